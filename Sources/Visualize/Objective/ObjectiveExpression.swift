import Engine
import Foundation

/// Parses what a person types for a unit or a combination of units:
///
///     blocks.5:17                    channel 17 of blocks.5 (or the neuron at the centre, for `vizlab neuron`)
///     blocks.5:17@3,4                the neuron at x 3, y 4 of the layer's grid
///     logits:281                     a class logit
///     blocks.5:17 - 0.5*blocks.5:3   weighted sums and differences
///     -blocks.5:17                   what least activates the unit
public enum ObjectiveExpression {
    /// How a bare LAYER:CH term is read.
    public enum UnitKind: String, Sendable { case channel, neuron }

    public struct Term: Equatable, Sendable {
        public var weight: Float
        public var layer: String
        public var channel: Int
        public var position: (x: Int, y: Int)?
        public static func == (a: Term, b: Term) -> Bool {
            a.weight == b.weight && a.layer == b.layer && a.channel == b.channel && a.position?.x == b.position?.x && a.position?.y == b.position?.y
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "cannot read the objective '\(text)': \(reason)" }
    }

    /// The terms of `text`; layers are resolved (and channel ranges checked) by `resolve`, which throws a
    /// descriptive error for an unknown layer.
    public static func parse(_ text: String, resolve: (String) throws -> LayerInfo) throws -> [(Term, LayerInfo)] {
        var rest = Substring(text.filter { !$0.isWhitespace })
        guard !rest.isEmpty else { throw ParseError(text: text, reason: "it is empty") }
        var terms: [(Term, LayerInfo)] = []
        while !rest.isEmpty {
            var sign: Float = 1
            if terms.isEmpty {
                if rest.first == "-" { sign = -1; rest.removeFirst() } else if rest.first == "+" { rest.removeFirst() }
            } else {
                guard let op = rest.first, op == "+" || op == "-" else {
                    throw ParseError(text: text, reason: "expected + or - before '\(rest)'")
                }
                sign = op == "-" ? -1 : 1
                rest.removeFirst()
            }
            // Optional "NUMBER*".
            var weight: Float = 1
            if let star = rest.firstIndex(of: "*"), let colon = rest.firstIndex(of: ":"), star < colon {
                guard let w = Float(rest[..<star]), w.isFinite else {
                    throw ParseError(text: text, reason: "'\(rest[..<star])' is not a number")
                }
                weight = w
                rest = rest[rest.index(after: star)...]
            }
            // LAYER:CH[@X,Y] up to the next + or - that starts a term (a '-' inside a number after '@' is not allowed).
            let end = rest.dropFirst().firstIndex { $0 == "+" || $0 == "-" } ?? rest.endIndex
            let unit = rest[..<end]
            rest = rest[end...]
            let (layer, channel, position) = try parseUnit(String(unit), in: text, resolve: resolve)
            terms.append((Term(weight: sign * weight, layer: layer.name, channel: channel, position: position), layer))
        }
        return terms
    }

    /// One LAYER:CH[@X,Y] — the one parser of a unit every command uses (`channel`, `neuron`, `activation`, `top`):
    /// the layer through `resolve` (which names the nearest valid layers), the channel and position range-checked.
    /// `in`: the whole text, for the message; `position: false` refuses @X,Y (commands that read a whole channel).
    public static func parseUnit(_ unit: String, in text: String? = nil, position allowed: Bool = true,
                                 resolve: (String) throws -> LayerInfo) throws -> (LayerInfo, Int, (x: Int, y: Int)?) {
        let text = text ?? unit
        let parts = unit.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ParseError(text: text, reason: "'\(unit)' is not LAYER:CHANNEL (e.g. blocks.5:17)")
        }
        let layer = try resolve(String(parts[0]))
        let channelAndPosition = parts[1].split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        guard let channel = Int(channelAndPosition[0]) else {
            throw ParseError(text: text, reason: "'\(channelAndPosition[0])' is not a channel number")
        }
        guard channel >= 0 && channel < layer.channels else {
            throw ParseError(text: text, reason: "channel \(channel) is out of range for \(layer.name): it has channels 0…\(layer.channels - 1)")
        }
        var position: (x: Int, y: Int)?
        if channelAndPosition.count == 2 {
            guard allowed else { throw ParseError(text: text, reason: "this command reads a whole channel; drop @\(channelAndPosition[1])") }
            let xy = channelAndPosition[1].split(separator: ",", omittingEmptySubsequences: false)
            guard xy.count == 2, let x = Int(xy[0]), let y = Int(xy[1]), x >= 0, y >= 0 else {
                throw ParseError(text: text, reason: "'@\(channelAndPosition[1])' is not a position @X,Y")
            }
            guard layer.shape.count == 3, y < layer.shape[1], x < layer.shape[2] else {
                throw ParseError(text: text, reason: "position @\(x),\(y) is outside \(layer.name)'s \(layer.shape.dropFirst().map(String.init).joined(separator: "×")) grid")
            }
            position = (x, y)
        }
        return (layer, channel, position)
    }

    /// The objective for parsed terms: a bare unit is a channel or a centre neuron by `kind`; a unit with @X,Y is
    /// always that neuron; layers without space (pool, logits) are a column.
    public static func objective(_ terms: [Term], kind: UnitKind) -> Objective {
        let parts = terms.map { t -> Objective in
            let unit: Objective = if let p = t.position { .neuron(t.layer, t.channel, x: p.x, y: p.y) }
                                  else if kind == .neuron { .neuron(t.layer, t.channel) }
                                  else { .channel(t.layer, t.channel) }
            return t.weight == 1 ? unit : (t.weight == -1 ? -unit : t.weight * unit)
        }
        let text = terms.enumerated().map { i, t -> String in
            let magnitude = abs(t.weight) == 1 ? "" : "\(abs(t.weight))*"
            let unit = "\(t.layer):\(t.channel)" + (t.position.map { "@\($0.x),\($0.y)" } ?? "")
            return (i == 0 ? (t.weight < 0 ? "-" : "") : (t.weight < 0 ? " - " : " + ")) + magnitude + unit
        }.joined()
        return parts.dropFirst().reduce(parts[0], +).named(text)
    }
}
