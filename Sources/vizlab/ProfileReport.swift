import Engine
import Foundation

/// The `--profile` table on stderr: the heaviest forward layers and backward ops, then totals by kind (forward
/// layers by the last part of their name, blocks.3.depthwise → depthwise; an inverted bottleneck run fused as one
/// step, by the name of its last conv and "(fused bottleneck)"; backward ops by op), per `per` units.
enum ProfileReport {
    static func write(header: String, per: Int, unit: String = "run", top: Int = 40) {
        let rows = Profiler.totals.sorted { $0.value.seconds > $1.value.seconds }
        let total = rows.reduce(0) { $0 + $1.value.seconds }
        let scale = 1e3 / Double(max(per, 1))
        var text = String(format: "profile: %@, %.2f ms per %@ in ops\n", header, total * scale, unit)
        for (key, value) in rows.prefix(top) { text += String(format: "  %9.3f ms  %@\n", value.seconds * scale, key) }
        var kinds: [String: (seconds: Double, count: Int)] = [:]
        for (key, value) in rows {
            let kind: String
            if key.hasSuffix("(fused bottleneck)") { kind = "forward fused bottleneck" }
            else if key.hasPrefix("forward ") { kind = "forward " + (key.dropFirst(8).split(separator: ".").last.map(String.init) ?? key) }
            else { kind = String(key.split(separator: "[")[0]).trimmingCharacters(in: .whitespaces) }
            kinds[kind, default: (0, 0)].seconds += value.seconds
            kinds[kind, default: (0, 0)].count += 1
        }
        text += "by kind:\n"
        for (kind, v) in kinds.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            text += String(format: "  %9.3f ms  %@ (%d)\n", v.seconds * scale, kind, v.count)
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
