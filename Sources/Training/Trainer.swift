import Engine
import Foundation
import Models

/// One finished epoch, as the log records it.
public struct EpochLog: Codable, Sendable, Equatable {
    public var stage: String
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double
    public var validationAccuracy: Double
    public var learningRate: Float
    public var seconds: Double
}

/// Transfer learning on a folder of classes: a pretrained base, a new head, and the stages of the chosen mode —
/// head on cached features, head end to end on augmented images, or fine-tuning from a layer on. After every epoch
/// the whole state (weights, optimizer moments, the best epoch so far, the log) is saved, so `resume` continues a
/// killed run from its last finished epoch; every random draw is a function of (seed, stage, epoch, position), so
/// the resumed run makes the same bytes as one never stopped.
public final class Trainer {
    public let config: TrainConfig
    public let data: ImageFolderDataset
    public let base: GraphModel
    public let model: GraphModel
    public let out: URL
    public let cacheRoot: URL
    public let cut: String
    public let size: Int
    public var progress: Progress
    let loader: BatchLoader

    struct Stage {
        var name: String
        var endToEnd: Bool
        var augment: Bool
        var epochs: Int
        var lr: Float
        var unfreezeFrom: String?
    }
    let stages: [Stage]

    public init(config: TrainConfig, data: ImageFolderDataset, base: GraphModel, out: URL, cacheRoot: URL,
                progress: Progress = Progress()) throws {
        self.config = config; self.data = data; self.base = base; self.out = out; self.cacheRoot = cacheRoot
        self.progress = progress
        size = config.size ?? base.spec.inputSize
        cut = base.graph.resolve(config.baseLayer ?? base.spec.embedding)
        let name = URL(fileURLWithPath: data.root).lastPathComponent
        model = try TransferModel.make(base: base, layer: cut, head: config.head, classes: data.classes, size: size,
                                       architecture: "\(base.spec.architecture)+\(name)", seed: config.seed)
        loader = BatchLoader(preprocessing: model.spec.preprocessing, augmentation: config.augmentation)
        switch config.mode {
        case .features:
            stages = [Stage(name: "head", endToEnd: false, augment: false, epochs: config.epochs, lr: config.lr)]
        case .augment:
            stages = [Stage(name: "head", endToEnd: true, augment: !config.augmentation.isIdentity, epochs: config.epochs, lr: config.lr)]
        case .finetune:
            guard let from = config.unfreezeFrom else { throw TrainingError("--mode finetune needs --unfreeze-from LAYER (e.g. blocks.12 on Lite0, block5_conv1 on VGG16)") }
            stages = [Stage(name: "head", endToEnd: false, augment: false, epochs: config.epochs, lr: config.lr),
                      Stage(name: "finetune", endToEnd: true, augment: !config.augmentation.isIdentity, epochs: config.finetuneEpochs,
                            lr: config.finetuneLR, unfreezeFrom: from)]
        }
        if let from = config.unfreezeFrom {
            guard let node = model.graph.node(named: model.graph.resolve(from)), !node.name.hasPrefix("head.") else {
                throw TrainingError("--unfreeze-from \(from): not a layer of the base (see `vizlab layers --model \(base.spec.architecture)`)")
            }
        }
        guard config.batch >= 1 && config.batch <= 4096 else { throw TrainingError("--batch \(config.batch): must be 1…4096") }
    }

    // MARK: - Parameters

    /// Head parameters, plus (when unfreezing) every learnable tensor of the nodes from `from` on (not running statistics).
    func trainable(from: String?) -> [(name: String, tensor: Tensor)] {
        var names = Set<String>()
        var on = false
        let start = from.map(model.graph.resolve)
        for node in model.graph.nodes {
            if node.name == start || node.name.hasPrefix("head.") { on = true }
            guard on else { continue }  // the head's nodes come last, so from the first one on all are head nodes
            if case .batchNorm = node.op { names.formUnion(node.parameters.prefix(2)) } else { names.formUnion(node.parameters) }
        }
        return model.namedParameters.filter { names.contains($0.name) }
    }

    /// Values computed before `from` that nodes from `from` on read: where a frozen part hands over to a trained one.
    func frontier(from: String) -> Set<String> {
        let start = model.graph.resolve(from)
        var before: Set<String> = [model.graph.input], out = Set<String>(), after = false
        for node in model.graph.nodes {
            if node.name == start { after = true }
            if after { out.formUnion(node.inputs.filter(before.contains)) } else { before.insert(node.name) }
        }
        return out
    }

    // MARK: - Features

    /// The frozen base's output at the cut for every image (from the cache where present), as rows of [N, D].
    func features(_ images: [LabeledImage], label: String) throws -> [Float] {
        let dim = model.layerInfo(named: cut).map { $0.shape.reduce(1, *) } ?? 0
        let cache = try FeatureCache(root: cacheRoot, modelID: base.spec.id, layer: cut, preprocessing: model.spec.preprocessing, dimension: dim)
        var rows = [Float](repeating: 0, count: images.count * dim)
        var missing: [Int] = []
        for (i, image) in images.enumerated() {
            if let f = cache.get(image.sha256) { rows.replaceSubrange(i * dim..<(i + 1) * dim, with: f) } else { missing.append(i) }
        }
        if missing.isEmpty { progress.line("\(label): \(images.count) features from the cache (\(cache.folder.path))"); return rows }
        // Batches of 16 when no dense layer comes before the cut: every other kernel computes each image on its own,
        // so a cached value never depends on which images shared its batch (ZooParityTests checks it). A dense
        // layer's batched product may round differently from batch 1's, so then one image at a time.
        let cutIndex = base.graph.nodes.firstIndex { $0.name == self.cut } ?? base.graph.nodes.count - 1
        let alone = base.graph.nodes[...cutIndex].contains { if case .dense = $0.op { return true } else { return false } }
        let chunk = 16
        let batches = stride(from: 0, to: missing.count, by: chunk).map { Array(missing[$0..<min($0 + chunk, missing.count)]) }
        let bar = progress.bar("\(label): features of \(missing.count) images (\(images.count - missing.count) cached)", total: missing.count)
        let loader = self.loader, base = self.base, cut = self.cut, size = self.size
        try prefetching(batches.count, make: { b in try batches[b].map { try loader.input(images[$0], seed: nil) } }) { b, inputs in
            let groups = alone ? inputs.indices.map { $0..<($0 + 1) } : [inputs.indices]
            for group in groups {
                let x = Tensor(shape: [group.count, 3, size, size], data: Array(inputs[group].joined()))
                let f = GradMode.withoutGrad { base.forward(x, capture: [cut])[cut]! }
                for (k, j) in group.enumerated() {
                    let i = batches[b][j], row = f.data[(k * dim)..<((k + 1) * dim)]
                    rows.replaceSubrange(i * dim..<(i + 1) * dim, with: row)
                    try cache.put(images[i].sha256, row)
                }
            }
            bar.advance(by: batches[b].count)
        }
        bar.finish()
        return rows
    }

    // MARK: - Evaluation

    public struct Evaluation: Codable, Sendable {
        public var loss: Double
        public var accuracy: Double
        public var predictions: [Int]
        public var probabilities: [[Float]]
        public var losses: [Float]
    }

    /// Inference over a split from precomputed values at `given` (features at the cut, or the frontier).
    func evaluate(_ images: [LabeledImage], given: [String], values: [[Float]], shapes: [[Int]]) -> Evaluation {
        Evaluator(model: model, classes: data.classes.count).run(images, given: given, values: values, shapes: shapes)
    }

    /// Values at the frontier of the unfrozen part for a split (inference; the frozen part never changes).
    func frontierValues(_ images: [LabeledImage], names: [String], label: String) throws -> [[Float]] {
        var out = names.map { _ in [Float]() }
        let bar = progress.bar("\(label): frozen part over \(images.count) images", total: images.count)
        let chunk = 16, loader = self.loader, model = self.model
        let batches = stride(from: 0, to: images.count, by: chunk).map { Array(images[$0..<min($0 + chunk, images.count)]) }
        try prefetching(batches.count, make: { try loader.batch(batches[$0], seeds: nil) }) { b, x in
            let v = GradMode.withoutGrad { model.forward(x, capture: Set(names)) }
            for (k, name) in names.enumerated() { out[k] += v[name]!.data }
            bar.advance(by: batches[b].count)
        }
        bar.finish()
        return out
    }

    // MARK: - Run

    public struct Result {
        public var model: GraphModel
        public var log: [EpochLog]
        public var best: (stage: String, epoch: Int, validationLoss: Double)
        public var evaluation: Evaluation
        public var evaluatedOn: String
        public var seconds: Double
    }

    public func run(resume: Bool) throws -> Result {
        let started = Date()
        Parallel.setThreads(config.threads)
        let store = StateStore(folder: out.appendingPathComponent("state"), config: config, dataDigest: dataDigest)
        var state = StateStore.State(stage: 0, epochsDone: 0, log: [], bestLoss: .infinity, bestStage: "", bestEpoch: 0, sinceBest: 0)
        var optimizer = Optimizer(kind: config.optimizer, weightDecay: config.weightDecay, momentum: config.momentum)
        var best: [String: [Float]] = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.tensor.data) })
        if resume {
            guard let saved = try store.load() else { throw TrainingError("--resume: \(store.folder.path) holds no finished epoch to resume from") }
            state = saved.state
            for (name, t) in model.namedParameters { if let v = saved.current[name] { t.data = v } }
            best = saved.best
            optimizer.restore(saved.optimizer)
            progress.line("resuming after \(state.log.last.map { "\($0.stage) epoch \($0.epoch)" } ?? "nothing") (\(state.log.count) epochs done)")
            model.parametersChanged()
        } else {
            try? FileManager.default.removeItem(at: store.folder)
        }
        let classWeights = config.classWeight == .balanced ? data.balancedClassWeights : nil
        let cutShape = Array(model.layerInfo(named: cut)!.shape)
        var trainFeatures: [Float]?, validationFeatures: [Float]?
        func needFeatures() throws {
            if trainFeatures == nil && stages.contains(where: { !$0.endToEnd }) { trainFeatures = try features(data.train, label: "train") }
            if validationFeatures == nil { validationFeatures = try features(data.validation, label: "validation") }
        }
        try needFeatures()

        for (s, stage) in stages.enumerated() where s >= state.stage {
            if s > state.stage { state.stage = s; state.epochsDone = 0; state.sinceBest = 0; optimizer = Optimizer(kind: config.optimizer, weightDecay: config.weightDecay, momentum: config.momentum) }
            for p in model.namedParameters { p.tensor.requiresGrad = false; p.tensor.grad = nil }
            let params = trainable(from: stage.unfreezeFrom)
            for p in params { p.tensor.requiresGrad = true }
            model.parametersChanged()
            // Validation: from the cached features while the base is frozen, else from the frozen part's output.
            let front = stage.unfreezeFrom.map { Array(frontier(from: $0)).sorted() }
            var validationGiven = [cut], validationValues = [validationFeatures!], validationShapes = [cutShape]
            if let front {
                validationGiven = front
                validationValues = try frontierValues(data.validation, names: front, label: "validation")
                validationShapes = front.map { Array(model.layerInfo(named: $0)?.shape ?? [3, size, size]) }
            }
            // What each training step is fed. The head alone trains on the cached features. Fine-tuning on plain
            // images: the frozen part's output for a training image never changes either (only trainable batch norms
            // take batch statistics), so it is computed once, as validation's is, and a step runs only the unfrozen
            // part (when those values fit in 512 MB). Augmented images need the whole model at every step.
            var trainGiven: (names: [String], values: [[Float]], shapes: [[Int]])?
            if !stage.endToEnd {
                trainGiven = ([cut], [trainFeatures!], [cutShape])
            } else if let front, !stage.augment, !config.endToEnd,
                      validationShapes.map({ $0.reduce(1, *) }).reduce(0, +) * data.train.count * 4 <= 512 << 20 {
                trainGiven = (front, try frontierValues(data.train, names: front, label: "train"), validationShapes)
            }
            let batchesPerEpoch = (data.train.count + config.batch - 1) / config.batch
            let totalSteps = batchesPerEpoch * stage.epochs
            // A stage that stopped early before a resume stays stopped (its best weights are restored below).
            let first = state.sinceBest >= (config.patience ?? .max) ? stage.epochs : state.epochsDone
            for epoch in first..<stage.epochs {
                let epochStart = Date()
                var order = Array(data.train.indices)
                var shuffle = SeededGenerator(seed: mix(config.seed, s, epoch, 0x5348))
                order.shuffle(using: &shuffle)
                let batches = stride(from: 0, to: order.count, by: config.batch).map { Array(order[$0..<min($0 + config.batch, order.count)]) }
                let bar = progress.bar("\(stage.name) epoch \(epoch + 1)/\(stage.epochs)", total: batches.count)
                var lossSum = 0.0, correct = 0, seen = 0, lr = stage.lr
                let loader = self.loader, train = data.train, seed = config.seed, augment = stage.augment
                func step(_ b: Int, _ logits: () -> Tensor) {
                    let labels = batches[b].map { train[$0].label }
                    let out = logits()
                    let (loss, _) = softmaxCrossEntropy(out, labels: labels, classWeights: classWeights)
                    loss.backward()
                    lr = config.schedule.rate(stage.lr, step: epoch * batchesPerEpoch + b, total: totalSteps)
                    optimizer.step(params, lr: lr)
                    let c = out.shape[1]
                    for (r, y) in labels.enumerated() {
                        let row = out.data[r * c..<(r + 1) * c]
                        if row.indices.max(by: { row[$0] < row[$1] })! - r * c == y { correct += 1 }
                    }
                    lossSum += Double(loss.item) * Double(labels.count); seen += labels.count
                    bar.advance(by: 1, status: String(format: "loss %.4f acc %.3f", lossSum / Double(seen), Double(correct) / Double(seen)))
                }
                if let given = trainGiven {
                    let dims = given.shapes.map { $0.reduce(1, *) }
                    for b in batches.indices {
                        var feed: [String: Tensor] = [:]
                        for (k, name) in given.names.enumerated() {
                            var rows = [Float](); rows.reserveCapacity(batches[b].count * dims[k])
                            for i in batches[b] { rows += given.values[k][i * dims[k]..<(i + 1) * dims[k]] }
                            feed[name] = Tensor(shape: [batches[b].count] + given.shapes[k], data: rows)
                        }
                        step(b) {
                            model.forward(feed, capture: [TransferModel.logits],
                                          mode: .training(seed: mix(seed, s, epoch, 0x44 << 32 | b), batchStatistics: stage.endToEnd && config.trainBN))[TransferModel.logits]!
                        }
                    }
                } else {
                    try prefetching(batches.count, make: { b in
                        try loader.batch(batches[b].map { train[$0] }, seeds: augment ? batches[b].map { mix(seed, s, epoch, $0 + 1) } : nil)
                    }) { b, x in
                        step(b) {
                            model.forward([model.graph.input: x], capture: [TransferModel.logits],
                                          mode: .training(seed: mix(seed, s, epoch, 0x44 << 32 | b), batchStatistics: config.trainBN))[TransferModel.logits]!
                        }
                    }
                }
                model.parametersChanged()
                let val = evaluate(data.validation, given: validationGiven, values: validationValues, shapes: validationShapes)
                let entry = EpochLog(stage: stage.name, epoch: epoch + 1, trainLoss: lossSum / Double(max(seen, 1)),
                                     trainAccuracy: Double(correct) / Double(max(seen, 1)), validationLoss: val.loss,
                                     validationAccuracy: val.accuracy, learningRate: lr, seconds: Date().timeIntervalSince(epochStart))
                bar.finish(status: String(format: "loss %.4f acc %.3f · validation loss %.4f acc %.3f", entry.trainLoss, entry.trainAccuracy, val.loss, val.accuracy))
                state.log.append(entry)
                state.epochsDone = epoch + 1
                if val.loss < state.bestLoss {
                    state.bestLoss = val.loss; state.bestStage = stage.name; state.bestEpoch = epoch + 1; state.sinceBest = 0
                    best = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.tensor.data) })
                } else {
                    state.sinceBest += 1
                }
                try store.save(state, current: model.namedParameters, best: best, optimizer: optimizer.state())
                if let p = config.patience, state.sinceBest >= p {
                    progress.line("\(stage.name): stopping early (no lower validation loss for \(p) epochs)")
                    break
                }
            }
            // The next stage (and the result) starts from the best weights so far.
            for (name, t) in model.namedParameters { t.data = best[name]!; t.requiresGrad = false; t.grad = nil }
            model.parametersChanged()
        }

        // Final: the best epoch's weights, evaluated on test (or validation when there is no test split).
        let evalSplit = data.test.isEmpty ? data.validation : data.test
        let evalName = data.test.isEmpty ? "validation" : "test"
        let final = try TransferModel.withWeights(model, best)
        let evaluation: Evaluation
        if stages.contains(where: { $0.unfreezeFrom != nil }) {
            // The base changed: run the whole model.
            let bar = progress.bar("\(evalName): \(evalSplit.count) images through the trained model", total: evalSplit.count)
            var cutRows: [[Float]] = []
            let chunk = 16, loader = self.loader
            let batches = stride(from: 0, to: evalSplit.count, by: chunk).map { Array(evalSplit[$0..<min($0 + chunk, evalSplit.count)]) }
            try prefetching(batches.count, make: { try loader.batch(batches[$0], seeds: nil) }) { b, x in
                let v = GradMode.withoutGrad { final.forward(x, capture: [cut])[cut]! }
                cutRows.append(v.data)
                bar.advance(by: batches[b].count)
            }
            bar.finish()
            evaluation = Trainer.evaluate(final, evalSplit, cut: cut, values: cutRows.flatMap { $0 }, shape: cutShape, classes: data.classes.count)
        } else {
            // The base is the pretrained one: its cached features serve (test's are computed only here).
            let evalFeatures = data.test.isEmpty ? validationFeatures! : try features(data.test, label: "test")
            evaluation = Trainer.evaluate(final, evalSplit, cut: cut, values: evalFeatures, shape: cutShape, classes: data.classes.count)
        }
        return Result(model: final, log: state.log, best: (state.bestStage, state.bestEpoch, state.bestLoss), evaluation: evaluation,
                      evaluatedOn: evalName, seconds: Date().timeIntervalSince(started))
    }

    static func evaluate(_ model: GraphModel, _ images: [LabeledImage], cut: String, values: [Float], shape: [Int], classes: Int) -> Evaluation {
        let t = Trainer.Evaluator(model: model, classes: classes)
        return t.run(images, given: [cut], values: [values], shapes: [shape])
    }

    /// Digest of the data a run trains on (file, label, content), so `--resume` refuses changed folders.
    var dataDigest: String {
        var s = data.classes.joined(separator: "\n") + "\n"
        for split in [data.train, data.validation, data.test] { for i in split { s += "\(i.label)\t\(i.sha256)\t\(i.path)\n" } }
        return SHA256.hex(of: Data(s.utf8))
    }
}

extension Trainer {
    /// Inference of the head (and whatever lies after `given`) for a model other than the one being trained.
    struct Evaluator {
        var model: GraphModel
        var classes: Int
        func run(_ images: [LabeledImage], given: [String], values: [[Float]], shapes: [[Int]]) -> Evaluation {
            var loss = 0.0, correct = 0, preds: [Int] = [], probs: [[Float]] = [], losses: [Float] = []
            for start in stride(from: 0, to: images.count, by: 64) {
                let n = min(64, images.count - start)
                var feed: [String: Tensor] = [:]
                for (k, name) in given.enumerated() {
                    let per = shapes[k].reduce(1, *)
                    feed[name] = Tensor(shape: [n] + shapes[k], data: Array(values[k][start * per..<(start + n) * per]))
                }
                let logits = GradMode.withoutGrad { model.forward(feed, capture: [TransferModel.logits], mode: .inference)[TransferModel.logits]! }
                let labels = images[start..<start + n].map(\.label)
                let (l, per) = GradMode.withoutGrad { softmaxCrossEntropy(logits, labels: labels) }
                loss += Double(l.item) * Double(n)
                let p = GradMode.withoutGrad { softmax(logits) }
                for r in 0..<n {
                    let row = Array(p.data[r * classes..<(r + 1) * classes])
                    let best = row.indices.max { row[$0] < row[$1] }!
                    preds.append(best); probs.append(row); losses.append(per[r])
                    if best == labels[r] { correct += 1 }
                }
            }
            return Evaluation(loss: loss / Double(max(images.count, 1)), accuracy: Double(correct) / Double(max(images.count, 1)),
                              predictions: preds, probabilities: probs, losses: losses)
        }
    }
}

/// A 64-bit seed from the run's seed and a position (stage, epoch, item): SplitMix-style mixing.
func mix(_ seed: UInt64, _ a: Int, _ b: Int, _ c: Int) -> UInt64 {
    var z = seed
    for v in [UInt64(truncatingIfNeeded: a), UInt64(truncatingIfNeeded: b), UInt64(truncatingIfNeeded: c)] {
        z = (z ^ v) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
    }
    return z
}
