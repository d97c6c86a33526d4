import Engine
import Foundation

/// One labelled image of a folder-per-class set.
public struct LabeledImage: Sendable, Equatable {
    public var path: String
    public var label: Int
    /// SHA-256 of the file's bytes (what the feature cache is keyed by).
    public var sha256: String
}

/// A file left out of training, and why (listed in the run's report).
public struct SkippedFile: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String
}

/// Folder-per-class images, as Keras `flow_from_directory` and torchvision `ImageFolder` read them: `ROOT/train/<class>/…`,
/// `ROOT/validation/<class>/…` and optionally `ROOT/test/<class>/…`; or `ROOT/<class>/…` split by `validationSplit`.
/// Classes are the class folders sorted by name. Every file is decoded once here: one that does not decode, or whose
/// bytes are not the format its extension says, is skipped and listed; a class with no usable image is an error.
public struct ImageFolderDataset: Sendable {
    public var root: String
    public var classes: [String]
    public var train: [LabeledImage]
    public var validation: [LabeledImage]
    public var test: [LabeledImage]
    public var skipped: [SkippedFile]

    /// Largest file read (bytes) and largest image decoded (pixels).
    static let maxFileBytes = 64 << 20

    public static func load(_ root: URL, validationSplit: Double? = nil, seed: UInt64 = 0) throws -> ImageFolderDataset {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw TrainingError("\(root.path): no such folder")
        }
        let trainDir = root.appendingPathComponent("train")
        let hasSplit = fm.fileExists(atPath: trainDir.path)
        var skipped: [SkippedFile] = []
        if hasSplit {
            guard validationSplit == nil else {
                throw TrainingError("--validation-split: \(root.path) already has train/ (and validation/) folders")
            }
            let valDir = root.appendingPathComponent("validation")
            guard fm.fileExists(atPath: valDir.path) else {
                throw TrainingError("\(root.path): has train/ but no validation/ (or give one folder of class folders and --validation-split)")
            }
            let classes = try classFolders(trainDir)
            let train = try scan(trainDir, classes: classes, skipped: &skipped, requireEvery: true)
            let validation = try scan(valDir, classes: classes, skipped: &skipped, requireEvery: false)
            let testDir = root.appendingPathComponent("test")
            let test = fm.fileExists(atPath: testDir.path) ? try scan(testDir, classes: classes, skipped: &skipped, requireEvery: false) : []
            guard !validation.isEmpty else { throw TrainingError("\(valDir.path): no usable images") }
            return ImageFolderDataset(root: root.path, classes: classes, train: train, validation: validation, test: test, skipped: skipped)
        }
        guard let split = validationSplit else {
            throw TrainingError("\(root.path): has no train/ folder; give --validation-split (e.g. 0.2) to split its class folders")
        }
        guard split > 0 && split < 1 else { throw TrainingError("--validation-split \(split): must be between 0 and 1") }
        let classes = try classFolders(root)
        let all = try scan(root, classes: classes, skipped: &skipped, requireEvery: true)
        // Per class, a seeded shuffle; the first ⌈split · n⌉ go to validation (at least one, at least one left to train).
        var train: [LabeledImage] = [], validation: [LabeledImage] = []
        for c in 0..<classes.count {
            var items = all.filter { $0.label == c }
            var rng = SeededGenerator(seed: seed ^ (UInt64(c) &* 0x9E37_79B9_7F4A_7C15))
            items.shuffle(using: &rng)
            guard items.count >= 2 else { throw TrainingError("\(root.appendingPathComponent(classes[c]).path): one image cannot be split into train and validation") }
            let k = min(items.count - 1, max(1, Int((Double(items.count) * split).rounded(.up))))
            validation += items.prefix(k)
            train += items.dropFirst(k)
        }
        let order: (LabeledImage, LabeledImage) -> Bool = { ($0.label, $0.path) < ($1.label, $1.path) }
        return ImageFolderDataset(root: root.path, classes: classes, train: train.sorted(by: order), validation: validation.sorted(by: order),
                                  test: [], skipped: skipped)
    }

    static func classFolders(_ dir: URL) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { name in
            var isDir: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
        guard names.count >= 2 else { throw TrainingError("\(dir.path): needs at least two class folders, found \(names.count)") }
        return names
    }

    /// Every image of every class folder under `dir`, decoded on both cores to check it.
    static func scan(_ dir: URL, classes: [String], skipped: inout [SkippedFile], requireEvery: Bool) throws -> [LabeledImage] {
        let fm = FileManager.default
        let present = Set(try classFolders(dir))
        if let stray = present.subtracting(classes).sorted().first {
            throw TrainingError("\(dir.appendingPathComponent(stray).path): class folder not in train/ (classes: \(classes.joined(separator: ", ")))")
        }
        var files: [(path: String, label: Int)] = []
        for (label, name) in classes.enumerated() {
            let classDir = dir.appendingPathComponent(name)
            guard let walker = fm.enumerator(atPath: classDir.path) else { continue }
            var found: [String] = []
            while let rel = walker.nextObject() as? String {
                let last = (rel as NSString).lastPathComponent
                if last.hasPrefix(".") { continue }
                var isDir: ObjCBool = false
                let full = classDir.appendingPathComponent(rel).path
                guard fm.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { continue }
                found.append(full)
            }
            files += found.sorted().map { ($0, label) }
        }
        var results = [Result<LabeledImage, SkippedFile>?](repeating: nil, count: files.count)
        results.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: max(1, min(Parallel.threads, files.count))) { worker in
                var i = worker
                while i < files.count {
                    o[i] = check(files[i].path, label: files[i].label)
                    i += max(1, min(Parallel.threads, files.count))
                }
            }
        }
        var images: [LabeledImage] = []
        for r in results {
            switch r! {
            case .success(let image): images.append(image)
            case .failure(let skip): skipped.append(skip)
            }
        }
        if requireEvery {
            for (label, name) in classes.enumerated() where !images.contains(where: { $0.label == label }) {
                throw TrainingError("\(dir.appendingPathComponent(name).path): class '\(name)' has no usable image")
            }
        }
        return images
    }

    /// Reads, sniffs and decodes one file.
    static func check(_ path: String, label: Int) -> Result<LabeledImage, SkippedFile> {
        let url = URL(fileURLWithPath: path)
        func skip(_ reason: String) -> Result<LabeledImage, SkippedFile> { .failure(SkippedFile(path: path, reason: reason)) }
        let ext = url.pathExtension.lowercased()
        guard ImageDecoder.fileExtensions.contains(ext) else { return skip("not an image file name (.\(ext))") }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxFileBytes else { return skip("\(size) bytes is more than \(maxFileBytes)") }
        guard let data = FileManager.default.contents(atPath: path) else { return skip("cannot read file") }
        guard !data.isEmpty else { return skip("empty file") }
        guard let format = ImageDecoder.sniff(data) else { return skip("not an image (its bytes are no PNG, JPEG or WebP)") }
        let expected: ImageDecoder.Format = ext == "png" ? .png : ext == "webp" ? .webp : .jpeg
        guard format == expected else { return skip("named .\(ext) but is \(format.rawValue.uppercased())") }
        do { _ = try ImageDecoder.decode(data: data, name: url.lastPathComponent) } catch { return skip("\(error)") }
        return .success(LabeledImage(path: path, label: label, sha256: SHA256.hex(of: data)))
    }

    /// Per-class counts of a split.
    public func counts(_ split: [LabeledImage]) -> [Int] {
        var c = [Int](repeating: 0, count: classes.count)
        for i in split { c[i.label] += 1 }
        return c
    }

    /// Keras / scikit-learn "balanced" class weights of the training split: n / (classes · countᶜ).
    public var balancedClassWeights: [Float] {
        let c = counts(train), n = Float(train.count)
        return c.map { n / (Float(classes.count) * Float(max($0, 1))) }
    }
}

extension SkippedFile: Error {}

/// A training input or option that cannot be used, as one line naming the file or flag.
public struct TrainingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
