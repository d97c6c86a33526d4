import Engine
import Foundation

/// Which renders a gallery needs, grouped into jobs. Channels are batched in fixed chunks from the start of the
/// list, so asking for more channels later reuses every chunk already rendered.
public struct GalleryPlan: Sendable {
    public struct Options: Sendable {
        /// Layers and the channels to show of each.
        public var layers: [(info: LayerInfo, channels: [Int])] = []
        /// Settings for the unit renders (channel, negative, neuron, diversity) and for the class renders.
        public var unitSettings = RenderSettings()
        public var classSettings = RenderSettings()
        /// Classes to render: a display name and the class indices (several for a WordNet group).
        public var classes: [(name: String, indices: [Int])] = []
        /// Pictures in a channel's diversity set (0: none), and the weight of the diversity term.
        public var diversity = 4
        public var diversityWeight: Float = 10
        public var neuron = true
        public var negative = true
        /// Channels per channel/negative/neuron job.
        public var batch = 8
        /// The model's id (part of every job's hash) and its logits node.
        public var model = "efficientnet-lite0"
        public var logits = "logits"
        public init() {}
    }

    /// A picture inside a job.
    public struct Ref: Sendable, Equatable { public var job: String; public var index: Int }

    public let options: Options
    public private(set) var jobs: [GalleryJob] = []
    private var refs: [String: Ref] = [:]

    public init(_ options: Options) {
        self.options = options
        for (info, channels) in options.layers {
            var kinds: [GalleryJob.Kind] = [.channel]
            if options.negative { kinds.append(.negative) }
            if options.neuron { kinds.append(.neuron) }
            for kind in kinds {
                for start in stride(from: 0, to: channels.count, by: options.batch) {
                    let chunk = Array(channels[start..<min(start + options.batch, channels.count)])
                    add(GalleryJob(kind: kind, layer: info.name, units: chunk.map { [$0] }, names: chunk.map(String.init),
                                   settings: options.unitSettings, model: options.model),
                        keys: chunk.map { Self.key(kind, info.name, $0) })
                }
            }
            if options.diversity > 1 {
                for c in channels {
                    add(GalleryJob(kind: .diversity, layer: info.name, units: Array(repeating: [c], count: options.diversity),
                                   names: (0..<options.diversity).map { "\(c) #\($0 + 1)" }, settings: options.unitSettings,
                                   model: options.model, diversityWeight: options.diversityWeight, diversityLayer: info.name),
                        keys: (0..<options.diversity).map { Self.key(.diversity, info.name, c, copy: $0) })
                }
            }
        }
        for start in stride(from: 0, to: options.classes.count, by: options.batch) {
            let chunk = Array(options.classes[start..<min(start + options.batch, options.classes.count)])
            add(GalleryJob(kind: .classes, layer: options.logits, units: chunk.map(\.indices), names: chunk.map(\.name),
                           settings: options.classSettings, model: options.model),
                keys: (start..<(start + chunk.count)).map { "classes/\($0)" })
        }
    }

    private mutating func add(_ job: GalleryJob, keys: [String]) {
        jobs.append(job)
        for (i, k) in keys.enumerated() { refs[k] = Ref(job: job.id, index: i) }
    }

    static func key(_ kind: GalleryJob.Kind, _ layer: String, _ channel: Int, copy: Int = 0) -> String {
        "\(kind.rawValue)/\(layer)/\(channel)/\(copy)"
    }

    /// Where the picture of `kind` for `layer:channel` is (copy: which diversity picture).
    public func ref(_ kind: GalleryJob.Kind, layer: String, channel: Int, copy: Int = 0) -> Ref? {
        refs[Self.key(kind, layer, channel, copy: copy)]
    }

    /// Where the ideal image of the `i`-th class is.
    public func classRef(_ i: Int) -> Ref? { refs["classes/\(i)"] }
}
