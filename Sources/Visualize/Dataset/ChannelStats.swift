import Engine
import Foundation

/// One image's summary of one layer: per channel the spatial max (and where), and the spatial mean. This is all
/// the index keeps per image, so the top/bottom lists can be rebuilt whenever images come or go.
public struct ChannelStats: Sendable, Equatable {
    public var max: [Float]
    public var mean: [Float]
    public var argmaxX: [UInt16]
    public var argmaxY: [UInt16]

    public var channels: Int { max.count }

    /// Stats of image `b` of a [N, C, H, W] (or [N, C]) activation.
    public init(_ t: Tensor, image b: Int) {
        let c = t.shape[1]
        let h = t.rank == 4 ? t.shape[2] : 1, w = t.rank == 4 ? t.shape[3] : 1
        let plane = h * w
        max = [Float](repeating: 0, count: c); mean = max
        argmaxX = [UInt16](repeating: 0, count: c); argmaxY = argmaxX
        t.data.withUnsafeBufferPointer { p in
            for ch in 0..<c {
                let base = (b * c + ch) * plane
                var best = -Float.infinity, at = 0, sum: Float = 0
                for i in 0..<plane {
                    let v = p[base + i]
                    sum += v
                    if v > best { best = v; at = i }
                }
                max[ch] = best; mean[ch] = sum / Float(plane)
                argmaxX[ch] = UInt16(at % w); argmaxY[ch] = UInt16(at / w)
            }
        }
    }

    init(max: [Float], mean: [Float], argmaxX: [UInt16], argmaxY: [UInt16]) {
        self.max = max; self.mean = mean; self.argmaxX = argmaxX; self.argmaxY = argmaxY
    }

    /// Little-endian blob: C floats max, C floats mean, C UInt16 x, C UInt16 y.
    public var blob: Data {
        var d = Data(capacity: channels * 12)
        for a in [max, mean] { a.withUnsafeBufferPointer { d.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) } }
        for a in [argmaxX, argmaxY] { a.withUnsafeBufferPointer { d.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 2)) } }
        return d
    }

    public init?(blob: Data) {
        guard blob.count % 12 == 0, blob.count > 0 else { return nil }
        let c = blob.count / 12
        var mx = [Float](repeating: 0, count: c), mn = mx
        var xs = [UInt16](repeating: 0, count: c), ys = xs
        blob.withUnsafeBytes { raw in
            mx.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(4 * c)])) }
            mn.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(4 * c)..<(8 * c)])) }
            xs.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(8 * c)..<(10 * c)])) }
            ys.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(10 * c)..<(12 * c)])) }
        }
        self.init(max: mx, mean: mn, argmaxX: xs, argmaxY: ys)
    }
}

/// Which statistic ranks images, and from which end.
public enum RankBy: String, Codable, Sendable, CaseIterable { case max, mean }
public enum RankEnd: String, Codable, Sendable, CaseIterable { case top, bottom }

/// One entry of a unit's ranked list.
public struct RankedExample: Codable, Sendable, Equatable {
    public var imageID: Int64
    public var value: Float
    public var x: Int
    public var y: Int
}

extension RankedExample {
    /// A list as one blob: per entry Int64 image id, Float value, UInt16 x, UInt16 y (16 bytes, little-endian).
    static func blob(_ list: [RankedExample]) -> Data {
        var d = Data(capacity: list.count * 16)
        for e in list {
            withUnsafeBytes(of: e.imageID.littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: e.value.bitPattern.littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt16(e.x).littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt16(e.y).littleEndian) { d.append(contentsOf: $0) }
        }
        return d
    }

    static func entries(_ blob: Data) -> [RankedExample] {
        let bytes = [UInt8](blob)
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(bytes[at + k]) << (8 * k) }
            return v
        }
        return stride(from: 0, to: bytes.count - 15, by: 16).map { at in
            RankedExample(imageID: le(at, Int64.self), value: Float(bitPattern: le(at + 8, UInt32.self)),
                          x: Int(le(at + 12, UInt16.self)), y: Int(le(at + 14, UInt16.self)))
        }
    }
}

public enum Ranking {
    /// Positions of the k best (top: largest; bottom: smallest) of `values`, best first, ties (a dead channel, a
    /// ReLU6 at its ceiling) broken by position — callers pass the values in path order, so an interrupted and
    /// resumed index agrees with an uninterrupted one. One pass with a sorted k-list (k ≪ n): a full sort per
    /// channel, by value and then by path, was most of the time rebuilding the lists.
    public static func best(_ values: [Float], k: Int, end: RankEnd) -> [Int] {
        guard k > 0 else { return [] }
        let top = end == .top
        @inline(__always) func better(_ i: Int, _ j: Int) -> Bool {
            let a = values[i], b = values[j]
            if a != b { return top ? a > b : a < b }
            return i < j
        }
        var out: [Int] = []
        out.reserveCapacity(k + 1)
        for i in values.indices {
            if out.count == k && !better(i, out[k - 1]) { continue }
            var lo = 0, hi = out.count
            while lo < hi { let mid = (lo + hi) / 2; if better(out[mid], i) { lo = mid + 1 } else { hi = mid } }
            out.insert(i, at: lo)
            if out.count > k { out.removeLast() }
        }
        return out
    }
}
