import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

/// The worker `vizlab gallery` starts: one render job (JSON on stdin) into the store, single-threaded, with
/// "step N" lines on stdout for the parent's progress display.
struct GalleryJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery-job",
        abstract: "Render one gallery job read as JSON from stdin (used by `vizlab gallery`).",
        shouldDisplay: false)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The render store (SITE/renders).")
    var store: String

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let job: GalleryJob
        do { job = try JSONDecoder().decode(GalleryJob.self, from: input) } catch {
            CLI.fail("gallery-job: stdin is not a gallery job: \(error)"); throw ExitCode(2)
        }
        // Single-threaded so a job's bytes do not depend on how many workers run beside it.
        Parallel.setThreads(1)
        let model = try CLI.loadModel(modelOptions)
        guard model.spec.id == job.model else {
            CLI.fail("gallery-job \(job.id): the job is for model \(job.model), this worker loaded \(model.spec.id)"); throw ExitCode(2)
        }
        let every = max(1, job.settings.steps / 64)
        do {
            try GalleryRenderer.run(job, model: model, store: URL(fileURLWithPath: store, isDirectory: true)) { step in
                if step % every == 0 || step == job.settings.steps { FileHandle.standardOutput.write(Data("step \(step)\n".utf8)) }
            }
        } catch {
            CLI.fail("gallery-job \(job.id): \(CLI.describe(error))"); throw ExitCode(1)
        }
    }
}
