import Engine
import Foundation

/// A built-in architecture: its graph in the names of the weights it was trained as, how its framework feeds it,
/// and the official weight files it reads. Adding an architecture is one file in Zoo/ and one line in `Zoo.all`.
public struct Architecture: Sendable {
    public var name: String
    /// What a user reads in `vizlab models`: family and which framework's form and names.
    public var summary: String
    public var inputSize: Int
    public var preprocessing: Preprocessing
    public var graph: Graph
    public var logits: String
    public var embedding: String
    public var defaultLayer: String
    public var galleryLayers: [String]
    /// Block outputs in order (the index's default layers).
    public var blocks: [String]
    /// Official files, most preferred first.
    public var files: [KnownFile]
    /// Keras forms: the layers in Keras' `model.layers` order (a Keras 3 `.weights.h5` numbers them so).
    public var keras: [KerasLayer] = []

    /// The spec of this architecture with one weight file.
    public func spec(sha256: String, file: String, labels: [String] = ImageNetLabels.shared.lines) -> ModelSpec {
        ModelSpec(architecture: name, weightsSHA256: sha256, weightsFile: file, inputSize: inputSize, preprocessing: preprocessing,
                  labels: labels, logits: logits, embedding: embedding, defaultLayer: defaultLayer, galleryLayers: galleryLayers,
                  blocks: blocks)
    }
}

/// An official weight file: its name where the framework caches it, and how its integrity is known.
public struct KnownFile: Sendable {
    public enum Cache: String, Sendable { case vizlab = "$VIZLAB_HOME", torchHub = "torch hub", keras = "~/.keras/models" }
    public var fileName: String
    public var cache: Cache
    /// Full SHA-256, or its first hex digits (torchvision names its files with the first 8).
    public var sha256: String
    /// Where it comes from (for `vizlab models` and error messages).
    public var source: String
    /// The MD5 the framework publishes for it (Keras' `file_hash`), when it publishes one.
    public var md5: String? = nil
    /// Where the framework downloads it from.
    public var url: String? = nil
}

public enum Zoo {
    /// Every built-in architecture, in the order `vizlab models` lists them.
    public static let all: [Architecture] = [
        EfficientNetLite.lite0, EfficientNetLite.lite1, EfficientNetLite.lite2,
        VGG.vgg16, VGG.vgg19, ResNet.resnet50, MobileNetV2.torchvision,
        KerasApplications.vgg16, KerasApplications.vgg19, KerasApplications.resnet50, KerasApplications.mobilenetV2,
    ]

    public static let defaultName = "lite0"

    public static func architecture(named name: String) -> Architecture? {
        all.first { $0.name == name.lowercased() }
    }

    public static var names: [String] { all.map(\.name) }
}
