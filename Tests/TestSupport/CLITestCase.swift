import Foundation
import XCTest
import Engine
import Models

/// Runs the built `vizlab` binary in a scratch folder. Needs `make setup` (weights + sample photos).
open class VizlabCLITestCase: XCTestCase {
    public static let binary: URL = {
        let main = Bundle.main.bundleURL
        let dir = main.pathExtension == "xctest" ? main.deletingLastPathComponent() : main
        return dir.appendingPathComponent("vizlab")
    }()

    public var samples: URL { WeightStore.home.appendingPathComponent("samples") }
    public var scratch: URL!

    override open func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("vizlab binary not built at \(Self.binary.path)")
        }
        let needed = [ModelStore.candidates(EfficientNetLite.lite0)[0].url, samples.appendingPathComponent("chelsea.png"), samples.appendingPathComponent("chicky_512.png")]
        for url in needed where !FileManager.default.fileExists(atPath: url.path) {
            let message = "missing \(url.path): run `make setup`"
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message) }
            throw XCTSkip(message)
        }
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vizlab-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override open func tearDown() {
        if let s = scratch { try? FileManager.default.removeItem(at: s) }
    }

    public struct Run { public var status: Int32; public var stdout: String; public var stderr: String }

    public func vizlab(_ args: [String], environment: [String: String] = [:]) throws -> Run {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

}

