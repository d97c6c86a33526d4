import ArgumentParser
import Engine
import Models
import Foundation
import Visualize

struct Grid: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lay rendered images out in one captioned grid (captions from their JSON sidecars when present).",
        discussion: "Example:\n  vizlab grid out/tv0/blocks.8_10.png out/tv50/blocks.8_10.png --out tv.png --title \"--tv 0 vs 50\"")

    @Argument(help: "Images (PNG, JPEG, WebP).")
    var images: [String]

    @Option(help: "Output PNG.")
    var out: String

    @Option(help: "Title line.")
    var title: String?

    @Option(help: "Tiles per row (default: about square).")
    var columns: Int?

    @Option(help: "Tile side in pixels.")
    var tile: Int = 224

    struct Sidecar: Decodable {
        var objective: String
        var valueOnSavedImage: Float
        var totalVariationOfSavedImage: Float?
        var classProbabilityOnSavedImage: Float?
        var settings: RenderSettings
        var classes: ClassSelection?
    }

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard (16...1024).contains(tile) else { throw ValidationError("--tile must be 16…1024 (got \(tile))") }
        if let c = columns, c < 1 { throw ValidationError("--columns must be ≥ 1 (got \(c))") }
    }

    func run() throws {
        var tiles: [Figures.Tile] = [], failed = false
        for path in images {
            do {
                let image = Preprocess.compositeOnWhite(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: path)))
                let sidecarURL = URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("json")
                var caption = [URL(fileURLWithPath: path).lastPathComponent]
                if let data = try? Data(contentsOf: sidecarURL), let s = try? JSONDecoder().decode(Sidecar.self, from: data) {
                    caption = [s.classes?.description ?? s.objective, String(format: "value %.3g", s.valueOnSavedImage)
                        + (s.totalVariationOfSavedImage.map { String(format: ", TV %.3f", $0) } ?? "")
                        + (s.classProbabilityOnSavedImage.map { String(format: ", p %.3f", $0) } ?? ""),
                               String(format: "tv %g, seed %llu, %d steps", s.settings.regularizers.totalVariation, s.settings.seed, s.settings.steps)]
                }
                tiles.append(Figures.Tile(image: image, caption: caption))
            } catch {
                CLI.fail(CLI.describe(error)); failed = true
            }
        }
        guard !tiles.isEmpty else { throw ExitCode(1) }
        let url = URL(fileURLWithPath: out)
        do { try PNGEncoder.write(Figures.grid(tiles, columns: columns, tileSize: tile, title: title), to: url) } catch {
            CLI.fail("\(out): \(CLI.describe(error))"); throw ExitCode(1)
        }
        print(url.path)
        if failed { throw ExitCode(1) }
    }
}
