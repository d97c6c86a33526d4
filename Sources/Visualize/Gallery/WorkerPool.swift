import Engine
import Foundation

/// Runs gallery jobs in `vizlab gallery-job` child processes, `workers` at a time, with progress and ETA on stderr.
/// Returns one line per failed job.
public struct GalleryWorkerPool {
    var jobs: [GalleryJob]
    var workers: Int
    var store: URL
    /// `--model …` for the workers: the very file the parent loaded.
    var model: [String]

    final class Running: @unchecked Sendable {
        let job: GalleryJob
        let process = Process()
        let lock = NSLock()
        var step = 0
        var stderr = Data()
        var stdoutBuffer = Data()
        init(job: GalleryJob) { self.job = job }
    }

    /// This very binary, so the workers are the same build as the parent.
    static var executable: URL {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return URL(fileURLWithPath: n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0])
    }

    public init(jobs: [GalleryJob], workers: Int, store: URL, model: [String]) {
        self.jobs = jobs; self.workers = workers; self.store = store; self.model = model
    }

    public func run() -> [String] {
        let executable = Self.executable
        // A worker that dies early must not kill the parent with SIGPIPE while it writes the job: the write fails instead.
        signal(SIGPIPE, SIG_IGN)
        let total = jobs.map(\.cost).reduce(0, +)
        // Longest first (class renders are 224 px), so no long job starts last and leaves a core idle at the end.
        let ordered = jobs.enumerated().sorted { a, b in
            let ca = a.element.cost * a.element.settings.size * a.element.settings.size
            let cb = b.element.cost * b.element.settings.size * b.element.settings.size
            return ca != cb ? ca > cb : a.offset < b.offset
        }.map(\.element)
        var pending = ordered[...], running: [Running] = [], failed: [String] = []
        var doneCost = 0, finished = 0
        let start = Date()
        var lastPrint = Date.distantPast
        while !pending.isEmpty || !running.isEmpty {
            while running.count < workers, let job = pending.popFirst() {
                let r = Running(job: job)
                r.process.executableURL = executable
                r.process.arguments = ["gallery-job", "--store", store.path] + model
                let input = Pipe(), output = Pipe(), errors = Pipe()
                r.process.standardInput = input; r.process.standardOutput = output; r.process.standardError = errors
                output.fileHandleForReading.readabilityHandler = { h in
                    let d = h.availableData
                    r.lock.lock(); defer { r.lock.unlock() }
                    r.stdoutBuffer.append(d)
                    // Lines "step N": keep the last complete one.
                    while let nl = r.stdoutBuffer.firstIndex(of: 10) {
                        let line = String(decoding: r.stdoutBuffer[r.stdoutBuffer.startIndex..<nl], as: UTF8.self)
                        r.stdoutBuffer.removeSubrange(r.stdoutBuffer.startIndex...nl)
                        if line.hasPrefix("step "), let n = Int(line.dropFirst(5)) { r.step = n }
                    }
                }
                errors.fileHandleForReading.readabilityHandler = { h in
                    let d = h.availableData
                    r.lock.lock(); r.stderr.append(d); r.lock.unlock()
                }
                do {
                    try r.process.run()
                } catch {
                    output.fileHandleForReading.readabilityHandler = nil
                    errors.fileHandleForReading.readabilityHandler = nil
                    for h in [input.fileHandleForWriting, input.fileHandleForReading, output.fileHandleForReading, output.fileHandleForWriting,
                              errors.fileHandleForReading, errors.fileHandleForWriting] { try? h.close() }
                    failed.append("gallery job \(job.id) (\(job.kind.rawValue) \(job.layer)): cannot start a worker \(executable.path): \(error.localizedDescription)")
                    continue
                }
                // If the worker is already gone the write fails; its exit status and stderr then tell why.
                try? input.fileHandleForWriting.write(contentsOf: job.canonicalJSON)
                try? input.fileHandleForWriting.close()
                running.append(r)
            }
            Thread.sleep(forTimeInterval: 0.1)
            let ended = running.filter { !$0.process.isRunning }
            running.removeAll { r in ended.contains { $0 === r } }
            for r in ended {
                r.process.waitUntilExit()
                (r.process.standardOutput as? Pipe)?.fileHandleForReading.readabilityHandler = nil
                // What the worker wrote last may still be in the pipe: drain it so its error message is not lost.
                if let errors = (r.process.standardError as? Pipe)?.fileHandleForReading {
                    errors.readabilityHandler = nil
                    let rest = (try? errors.readToEnd()) ?? nil
                    r.lock.lock(); r.stderr.append(rest ?? Data()); r.lock.unlock()
                    try? errors.close()
                }
                try? (r.process.standardOutput as? Pipe)?.fileHandleForReading.close()
                doneCost += r.job.cost
                finished += 1
                if r.process.terminationStatus != 0 || GalleryRenderer.stored(r.job.id, store: store) == nil {
                    r.lock.lock()
                    let message = String(decoding: r.stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "(it wrote nothing on stderr)"
                    r.lock.unlock()
                    failed.append("gallery job \(r.job.id) (\(r.job.kind.rawValue) \(r.job.layer) \(r.job.names.joined(separator: ","))) \(r.process.terminationReason == .uncaughtSignal ? "was killed by signal" : "failed with status") \(r.process.terminationStatus): \(message)")
                }
            }
            if Date().timeIntervalSince(lastPrint) >= 0.5 || (pending.isEmpty && running.isEmpty) {
                lastPrint = Date()
                let partial = running.map { r -> Int in r.lock.lock(); defer { r.lock.unlock() }; return r.step * r.job.units.count }.reduce(0, +)
                let done = doneCost + partial
                let elapsed = Date().timeIntervalSince(start)
                let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
                FileHandle.standardError.write(Data(String(format: "\rgallery: %d/%d render jobs, %.0f%% of %d image-steps, %@ elapsed, ETA %@   ",
                                                           finished, jobs.count, 100 * Double(done) / Double(max(total, 1)), total,
                                                           Self.clock(elapsed), Self.clock(eta)).utf8))
            }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        return failed
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
