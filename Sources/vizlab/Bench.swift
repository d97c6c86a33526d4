import Adversarial
import ArgumentParser
import Engine
import Models
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time forward and forward+backward-to-input at batch 1 and 8 (median of N runs).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Timed runs per measurement (after warm-up).")
    var runs: Int = 20

    @Option(help: "Threads for BLAS and our kernels (default: all cores).")
    var threads: Int?

    @Option(parsing: .upToNextOption, help: "Batch sizes to measure.")
    var batch: [Int] = [1, 8]

    @Option(name: .customLong("attack-steps"), help: "Also time a targeted PGD L∞ attack of this many steps on a 224x224 image (0 = skip).")
    var attackSteps: Int = 20

    @Flag(help: "Print JSON on stdout.")
    var json = false

    @Flag(help: "Also print where the time goes (batch 1): per layer of an inference forward (fused blocks as one), then per forward layer and backward op of forward+backward.")
    var profile = false

    struct Row: Encodable {
        var pass: String
        var batch: Int
        var medianMs: Double
        var minMs: Double
        var msPerImage: Double
        var gflops: Double
    }

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard batch.allSatisfy({ $0 >= 1 && $0 <= 256 }) else { throw ValidationError("--batch sizes must be 1…256") }
    }

    func run() throws {
        if let t = threads { Parallel.setThreads(t) }
        let model = try CLI.loadModel(modelOptions)
        let flopsPerImage = 2.0 * Double(model.multiplyAdds())
        let side = model.inputSize
        var rows: [Row] = []
        var rng = SystemRandomNumberGenerator()
        for n in batch {
            let data = (0..<(n * 3 * side * side)).map { _ in Float.random(in: -1...1, using: &rng) }
            let forward = time(runs) { _ = GradMode.withoutGrad { model(Tensor(shape: [n, 3, side, side], data: data)) } }
            rows.append(row("forward", n, forward, flops: flopsPerImage))
            let backward = time(runs) {
                let x = Tensor(shape: [n, 3, side, side], data: data, requiresGrad: true)
                sum(selectColumn(model(x), 281)).backward()
                precondition(x.grad != nil)
            }
            // Backward to the input costs about one more forward's worth of multiply-adds (no weight gradients).
            rows.append(row("forward+backward", n, backward, flops: 2 * flopsPerImage))
        }
        if attackSteps > 0 {
            // A targeted PGD on a fixed 224² image with early stopping off, so every run does all its steps: each
            // step is one forward+backward of the 8-bit image plus the update, projection and rounding.
            var gen = SeededGenerator(seed: 1)
            let pixels = (0..<(side * side * 4)).map { i in i % 4 == 3 ? UInt8(255) : UInt8.random(in: 40...215, using: &gen) }
            let problem = AttackProblem(model: model, image: RGBAImage(width: side, height: side, pixels: pixels), region: .crop)
            let attack = PGDLinf(budget: Budget(norm: .linf, epsilon: 4), steps: attackSteps)
            let times = time(max(3, runs / 4)) {
                let run = AttackRun(problem: problem, goal: .targeted([281], query: "281", description: "tabby"), seed: 1)
                run.earlyStop = false
                _ = attack.run(run)
            }
            rows.append(row("pgd \(attackSteps) steps", 1, times, flops: 2 * flopsPerImage * Double(attackSteps + 1)))
        }
        if profile { printProfile(model) }
        if json { try CLI.printJSON(rows); return }
        print("model: \(model.spec.id) at \(side)², \(String(format: "%.1f", flopsPerImage / 2e6)) M multiply-adds per image; threads: \(Parallel.threads), runs: \(runs)")
        print("pass               batch   median ms   min ms   ms/image    GF/s")
        for r in rows {
            print(r.pass.padding(toLength: 18, withPad: " ", startingAt: 0)
                  + String(format: "%6d  %10.2f  %7.2f  %9.2f  %6.1f", r.batch, r.medianMs, r.minMs, r.msPerImage, r.gflops))
        }
    }

    private func printProfile(_ model: any VisionModel) {
        let side = model.inputSize
        let data: [Float] = (0..<(3 * side * side)).map { (i: Int) -> Float in Float((i * 7919) % 255) / 128 - 1 }
        // Inference first (no gradient), then forward+backward (to the input: fused bottlenecks record their own backward).
        profiled("forward (inference)") { _ = GradMode.withoutGrad { model(Tensor(shape: [1, 3, side, side], data: data)) } }
        profiled("forward+backward") {
            let x = Tensor(shape: [1, 3, side, side], data: data, requiresGrad: true)
            sum(selectColumn(model(x), 281)).backward()
        }
    }

    /// `body` run `runs` times with the profiler on, then its table.
    private func profiled(_ pass: String, _ body: () -> Void) {
        Profiler.reset()
        Profiler.enabled = true
        for _ in 0..<runs { body() }
        Profiler.enabled = false
        ProfileReport.write(header: "\(pass), batch 1, \(runs) runs", per: runs)
    }

    private func row(_ pass: String, _ n: Int, _ times: [Double], flops: Double) -> Row {
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        return Row(pass: pass, batch: n, medianMs: median * 1e3, minMs: sorted[0] * 1e3, msPerImage: median * 1e3 / Double(n),
                   gflops: flops * Double(n) / median / 1e9)
    }

    private func time(_ runs: Int, _ body: () -> Void) -> [Double] {
        for _ in 0..<2 { body() }  // warm-up: page in weights, spin up BLAS threads
        return (0..<runs).map { _ in
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
    }
}
