import XCTest
import Engine
import Models

/// Small deterministic generator so every test run sees the same numbers.
public struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E3779B97F4A7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    public mutating func uniform(_ n: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &self) }
    }
    public mutating func tensor(_ shape: [Int], in range: ClosedRange<Float> = -1...1, grad: Bool = true) -> Tensor {
        Tensor(shape: shape, data: uniform(shape.reduce(1, *), in: range), requiresGrad: grad)
    }
}

/// Checks the analytic gradient of `sum(f(inputs) * r)` against central finite differences on a sample of
/// coordinates of every input that requires a gradient.
public func checkGradients(_ inputs: [Tensor], samples: Int = 24, step: Float = 1e-2, tolerance: Double = 2e-2,
                    seed: UInt64 = 1, file: StaticString = #filePath, line: UInt = #line,
                    _ f: ([Tensor]) -> Tensor) {
    var rng = TestRNG(seed: seed)
    let probe = f(inputs)
    let r = rng.uniform(probe.count)
    func loss() -> Double {
        let y = GradMode.withoutGrad { f(inputs) }
        return zip(y.data, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    for t in inputs { t.grad = nil }
    probe.backward(seed: r)
    for (which, t) in inputs.enumerated() where t.requiresGrad {
        guard let analytic = t.grad else { XCTFail("input \(which) got no gradient", file: file, line: line); continue }
        XCTAssertEqual(analytic.count, t.count, file: file, line: line)
        var worst = 0.0
        let scaleRef = max(analytic.map { Double(abs($0)) }.max() ?? 0, 1e-3)
        for _ in 0..<samples {
            let i = Int.random(in: 0..<t.count, using: &rng)
            let saved = t.data[i]
            t.data[i] = saved + step; let up = loss()
            t.data[i] = saved - step; let down = loss()
            t.data[i] = saved
            let numeric = (up - down) / (2 * Double(step))
            let err = abs(numeric - Double(analytic[i])) / max(abs(numeric), abs(Double(analytic[i])), 0.05 * scaleRef)
            worst = max(worst, err)
        }
        XCTAssertLessThan(worst, tolerance, "input \(which) \(t.shape): worst relative error \(worst)", file: file, line: line)
    }
}

/// The pretrained model, loaded once per test process; skips (or fails under CI) when the weights are missing.
nonisolated(unsafe) private var cachedModel: (any VisionModel)?

public func pretrainedModel() throws -> any VisionModel {
    if let m = cachedModel { return m }
    do { cachedModel = try ModelStore.load(ModelRequest(model: "lite0")) } catch {
        if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("\(error)") }
        throw XCTSkip("weights unavailable: \(error)")
    }
    return cachedModel!
}
