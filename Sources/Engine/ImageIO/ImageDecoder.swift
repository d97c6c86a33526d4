import CImageCodecs
import CWebP
import Foundation

/// Decodes PNG, JPEG and WebP (recognised by their bytes, not the file name) to RGBA8.
public enum ImageDecoder {
    /// Larger images are refused from their header, before any pixel memory is allocated.
    nonisolated(unsafe) public static var maxPixels = 100_000_000

    /// File-name extensions (lower case) that folder walks treat as images; decoding itself sniffs the bytes.
    public static let fileExtensions: Set<String> = ["png", "jpg", "jpeg", "webp"]

    public static func decode(contentsOf url: URL) throws -> RGBAImage {
        let name = url.lastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ImageError(file: name, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ImageError(file: name, reason: "is a directory, not an image") }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw ImageError(file: name, reason: "cannot read file") }
        return try decode(data: data, name: name)
    }

    public enum Format: String { case png, jpeg, webp }

    public static func sniff(_ data: Data) -> Format? {
        let b = [UInt8](data.prefix(12))
        if b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if b.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if b.count == 12 && b.starts(with: Array("RIFF".utf8)) && Array(b[8..<12]) == Array("WEBP".utf8) { return .webp }
        return nil
    }

    public static func decode(data: Data, name: String) throws -> RGBAImage {
        guard !data.isEmpty else { throw ImageError(file: name, reason: "empty file") }
        guard let format = sniff(data) else { throw ImageError(file: name, reason: "not an image (unrecognized header; PNG, JPEG and WebP are supported)") }
        let bytes = [UInt8](data)
        switch format {
        case .png: return try decodePNG(bytes, name)
        case .jpeg: return try decodeJPEG(bytes, name)
        case .webp: return try decodeWebP(bytes, name)
        }
    }

    private static func tooLarge(_ name: String, _ w: Int, _ h: Int) -> ImageError {
        ImageError(file: name, reason: "\(w)x\(h) pixels exceeds the \(maxPixels / 1_000_000)-megapixel limit")
    }

    private static func decodePNG(_ bytes: [UInt8], _ name: String) throws -> RGBAImage {
        var out: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = vz_png_decode(bytes, bytes.count, maxPixels, &out, &w, &h, &message, message.count)
        defer { vz_free(out) }
        switch Int(status) {
        case Int(VZ_OK): return RGBAImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: out, count: Int(w) * Int(h) * 4)))
        case Int(VZ_TOO_LARGE): throw tooLarge(name, Int(w), Int(h))
        default: throw ImageError(file: name, reason: "corrupt PNG (\(String(cString: message)))")
        }
    }

    private static func decodeJPEG(_ bytes: [UInt8], _ name: String) throws -> RGBAImage {
        var out: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, orientation: Int32 = 1
        var message = [CChar](repeating: 0, count: 256)
        let status = vz_jpeg_decode(bytes, bytes.count, maxPixels, &out, &w, &h, &orientation, &message, message.count)
        defer { vz_free(out) }
        switch Int(status) {
        case Int(VZ_OK):
            let rgb = UnsafeBufferPointer(start: out, count: Int(w) * Int(h) * 3)
            var rgba = [UInt8](repeating: 255, count: Int(w) * Int(h) * 4)
            for i in 0..<(Int(w) * Int(h)) { rgba[i * 4] = rgb[i * 3]; rgba[i * 4 + 1] = rgb[i * 3 + 1]; rgba[i * 4 + 2] = rgb[i * 3 + 2] }
            return Orientation.apply(Int(orientation), to: RGBAImage(width: Int(w), height: Int(h), pixels: rgba))
        case Int(VZ_TOO_LARGE): throw tooLarge(name, Int(w), Int(h))
        default:
            let text = String(cString: message)
            throw ImageError(file: name, reason: text.hasPrefix("truncated") ? text : "corrupt JPEG (\(text))")
        }
    }

    private static func decodeWebP(_ bytes: [UInt8], _ name: String) throws -> RGBAImage {
        var w: Int32 = 0, h: Int32 = 0
        guard WebPGetInfo(bytes, bytes.count, &w, &h) != 0 else { throw ImageError(file: name, reason: "corrupt WebP (bad header)") }
        guard Int(w) * Int(h) <= maxPixels else { throw tooLarge(name, Int(w), Int(h)) }
        guard let out = WebPDecodeRGBA(bytes, bytes.count, &w, &h) else {
            throw ImageError(file: name, reason: "corrupt WebP (cannot decode the image data)")
        }
        defer { WebPFree(out) }
        return RGBAImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: out, count: Int(w) * Int(h) * 4)))
    }
}

/// EXIF orientation (1–8): the rotation/flip that makes a camera JPEG upright, as viewers show it.
enum Orientation {
    static func apply(_ orientation: Int, to image: RGBAImage) -> RGBAImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width, h = image.height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                // Source pixel for output (x, y), per the EXIF spec's eight cases.
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                case 4: (sx, sy) = (x, h - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, h - 1 - x)
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                default: (sx, sy) = (w - 1 - y, x)
                }
                let s = (sy * w + sx) * 4, d = (y * ow + x) * 4
                out[d] = image.pixels[s]; out[d + 1] = image.pixels[s + 1]; out[d + 2] = image.pixels[s + 2]; out[d + 3] = image.pixels[s + 3]
            }
        }
        return RGBAImage(width: ow, height: oh, pixels: out)
    }
}
