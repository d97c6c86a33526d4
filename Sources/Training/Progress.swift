import Foundation

/// Progress on stderr: a bar redrawn in place on a terminal, or (when stderr is a file or pipe) a line at every
/// tenth and at the end, so logs stay readable. Silent when `enabled` is false.
public struct Progress: Sendable {
    public var enabled: Bool
    let terminal: Bool

    public init(enabled: Bool = true) {
        self.enabled = enabled
        terminal = isatty(2) != 0
    }

    public func line(_ s: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    public func bar(_ label: String, total: Int) -> Bar { Bar(label: label, total: total, progress: self) }

    public final class Bar: @unchecked Sendable {
        let label: String, total: Int, progress: Progress
        let start = Date()
        var done = 0, lastTenth = 0
        var status = ""

        init(label: String, total: Int, progress: Progress) { self.label = label; self.total = max(total, 1); self.progress = progress }

        public func advance(by n: Int, status: String? = nil) {
            done += n
            if let status { self.status = status }
            guard progress.enabled else { return }
            let tenth = done * 10 / total
            if progress.terminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + render()).utf8))
            } else if tenth > lastTenth && done < total {
                lastTenth = tenth
                FileHandle.standardError.write(Data((render() + "\n").utf8))
            }
        }

        public func finish(status: String? = nil) {
            if let status { self.status = status }
            guard progress.enabled else { return }
            let elapsed = Date().timeIntervalSince(start)
            let line = String(format: "%@: %d/%d, %.1fs", label, min(done, total), total, elapsed) + (self.status.isEmpty ? "" : "  " + self.status)
            FileHandle.standardError.write(Data(((progress.terminal ? "\r\u{1B}[2K" : "") + line + "\n").utf8))
        }

        func render() -> String {
            let f = Double(min(done, total)) / Double(total)
            let elapsed = Date().timeIntervalSince(start)
            let eta = f > 0 ? elapsed * (1 - f) / f : 0
            let width = 24, filled = Int(f * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            return String(format: "%@ [%@] %d/%d %.1fs, ETA %.1fs", label, bar, done, total, elapsed, eta) + (status.isEmpty ? "" : "  " + status)
        }
    }
}
