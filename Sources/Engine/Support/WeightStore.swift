import Foundation

/// Where vizlab keeps what it downloads (`$VIZLAB_HOME`, default `~/.cache/vizlab`) and the command that fetches it.
public enum WeightStore {
    /// The one command that (re)fetches everything.
    public static let fixCommand = "make setup"

    public static var home: URL {
        if let env = ProcessInfo.processInfo.environment["VIZLAB_HOME"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/vizlab", isDirectory: true)
    }
}
