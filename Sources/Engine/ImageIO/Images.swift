/// 8-bit RGBA pixels, straight (not premultiplied) alpha, row-major, interleaved.
public struct RGBAImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 4, "RGBA image \(width)x\(height) needs \(width * height * 4) bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// 8-bit RGB pixels, row-major, interleaved.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB image \(width)x\(height) needs \(width * height * 3) bytes")
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// Channel `c` of pixel (x, y).
    public subscript(_ x: Int, _ y: Int, _ c: Int) -> UInt8 { pixels[(y * width + x) * 3 + c] }
}

/// An image that cannot be used, in one line naming the file: "cat.jpg: truncated (premature end of JPEG data)".
public struct ImageError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
}
