import Engine
import Foundation
import Models

/// Turns labelled images into model-input batches: decode, the model's resize and crop at the training size, an
/// optional random transform (seeded per image and epoch, so the same run sees the same pixels whatever the
/// thread timing), the model's normalization. The next batch is made on a background queue, its images on both
/// cores, while the caller computes on the current one.
public struct BatchLoader: Sendable {
    public var preprocessing: Preprocessing
    public var augmentation: Augmentation

    public init(preprocessing: Preprocessing, augmentation: Augmentation = .none) {
        self.preprocessing = preprocessing; self.augmentation = augmentation
    }

    /// One image as [3, S, S] normalized floats; `seed` nil = no augmentation (validation, test, features).
    public func input(_ image: LabeledImage, seed: UInt64?) throws -> [Float] {
        let decoded = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: image.path))
        let rgb = Preprocess.compositeOnWhite(decoded)
        guard let seed, !augmentation.isIdentity else { return preprocessing.input(rgb: rgb).data }
        let view = preprocessing.view(rgb)
        var rng = SeededGenerator(seed: seed)
        let floats = augmentation.apply(view, using: &rng)
        return preprocessing.normalize(interleaved: floats, width: view.width, height: view.height)
    }

    /// A batch [N, 3, S, S] of the given images (per-image augmentation seeds, or nil).
    public func batch(_ images: [LabeledImage], seeds: [UInt64]?) throws -> Tensor {
        let size = preprocessing.crop, per = 3 * size * size
        var data = [Float](repeating: 0, count: images.count * per)
        var failure: Error?
        let lock = NSLock()
        data.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            Parallel.forEachChunk(images.count) { range in
                for i in range {
                    do {
                        let x = try input(images[i], seed: seeds?[i])
                        precondition(x.count == per, "image \(images[i].path) gave \(x.count) values, expected \(per)")
                        x.withUnsafeBufferPointer { (base + i * per).update(from: $0.baseAddress!, count: per) }
                    } catch {
                        lock.lock(); if failure == nil { failure = TrainingError("\(images[i].path): \(error) (it decoded when the folder was scanned)") }; lock.unlock()
                    }
                }
            }
        }
        if let failure { throw failure }
        return Tensor(shape: [images.count, 3, size, size], data: data)
    }
}

/// Runs `make(i)` for i in 0..<count one step ahead of the consumer: while `consume` works on item i, item i + 1
/// is being made on a background queue.
public func prefetching<T>(_ count: Int, make: @escaping @Sendable (Int) throws -> T, consume: (Int, T) throws -> Void) throws {
    guard count > 0 else { return }
    typealias Slot = PrefetchSlot<T>
    let queue = DispatchQueue(label: "vizlab.prefetch")
    func start(_ i: Int) -> Slot {
        let slot = Slot()
        queue.async { slot.value = Result { try make(i) }; slot.done.signal() }
        return slot
    }
    var next = start(0)
    for i in 0..<count {
        let current = next
        current.done.wait()
        if i + 1 < count { next = start(i + 1) }
        let value = try current.value!.get()
        try consume(i, value)
    }
    // A failure above leaves at most one job running; wait for it so nothing outlives the call.
    if count > 1 { queue.sync {} }
}

final class PrefetchSlot<T>: @unchecked Sendable {
    var value: Result<T, Error>?
    let done = DispatchSemaphore(value: 0)
}
