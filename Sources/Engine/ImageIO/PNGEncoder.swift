import CImageCodecs
import Foundation

public enum PNGEncoder {
    public static func encode(_ image: RGBImage) throws -> Data { try encode(image.pixels, image.width, image.height, channels: 3) }
    public static func encode(_ image: RGBAImage) throws -> Data { try encode(image.pixels, image.width, image.height, channels: 4) }

    /// Writes atomically (temp file + rename): a crash never leaves a half-written PNG.
    public static func write(_ image: RGBImage, to url: URL) throws { try AtomicFile.write(try encode(image), to: url) }
    public static func write(_ image: RGBAImage, to url: URL) throws { try AtomicFile.write(try encode(image), to: url) }

    private static func encode(_ pixels: [UInt8], _ w: Int, _ h: Int, channels: Int32) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        guard vz_png_encode(pixels, Int32(w), Int32(h), channels, &out, &size, &message, message.count) == VZ_OK, let buffer = out else {
            throw ImageError(file: "png", reason: "cannot encode: \(String(cString: message))")
        }
        defer { vz_free(buffer) }
        return Data(bytes: buffer, count: size)
    }
}
