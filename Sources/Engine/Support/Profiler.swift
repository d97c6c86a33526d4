import Foundation

/// Optional wall-clock accounting per forward layer and per backward op (`vizlab bench --profile`).
/// Off by default; when off it costs one branch per op.
public enum Profiler {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var totals: [String: (calls: Int, seconds: Double)] = [:]

    public static func reset() { totals = [:] }

    @inline(__always)
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    public static func record(_ key: @autoclosure () -> String, since start: UInt64) {
        let seconds = Double(now() - start) / 1e9
        let k = key()
        let old = totals[k] ?? (0, 0)
        totals[k] = (old.calls + 1, old.seconds + seconds)
    }
}
