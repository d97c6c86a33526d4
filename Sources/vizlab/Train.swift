import ArgumentParser
import Engine
import Foundation
import Models
import Training

extension TrainConfig.Mode: ExpressibleByArgument {}
extension TrainConfig.ClassWeight: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension Schedule: ExpressibleByArgument {}

/// Keras ImageDataGenerator's transforms, one flag each (the tutorial's values by default).
struct AugmentationOptions: ParsableArguments {
    @Option(help: "Random rotation, ± degrees (Keras rotation_range).") var rotation: Double = 40
    @Option(name: .customLong("width-shift"), help: "Random horizontal shift, ± fraction of the width.") var widthShift: Double = 0.2
    @Option(name: .customLong("height-shift"), help: "Random vertical shift, ± fraction of the height.") var heightShift: Double = 0.2
    @Option(help: "Random shear, ± degrees (Keras' shear_range is an angle: 0.2 means 0.2°).") var shear: Double = 0.2
    @Option(help: "Random zoom, each axis in 1 ± this.") var zoom: Double = 0.2
    @Flag(name: .customLong("no-flip"), help: "No random horizontal flips.") var noFlip = false
    @Flag(name: .customLong("no-augment"), help: "No augmentation at all (augment and finetune modes then see the plain images).") var none = false

    var augmentation: Augmentation {
        none ? .none : Augmentation(rotation: rotation, widthShift: widthShift, heightShift: heightShift, shear: shear, zoom: zoom, horizontalFlip: !noFlip)
    }

    func validate() throws {
        guard (0...180).contains(rotation) else { throw ValidationError("--rotation must be 0…180 degrees") }
        for (n, v) in [("width-shift", widthShift), ("height-shift", heightShift), ("zoom", zoom)] where !(0..<1).contains(v) {
            throw ValidationError("--\(n) must be in [0, 1)")
        }
        guard (0..<90).contains(shear) else { throw ValidationError("--shear must be 0…90 degrees") }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Transfer learning on a folder of classes: a pretrained base, a new head, optionally fine-tuned.",
        discussion: """
        DATA holds train/<class>/… and validation/<class>/… (and optionally test/<class>/…), or class folders and \
        --validation-split. Files that do not decode, or are not what their extension says, are skipped and listed. \
        Modes: features (the frozen base run once, features cached in $VIZLAB_HOME/features, the head trained on them), \
        augment (frozen base end to end on augmented images), finetune (the head first, then the base from \
        --unfreeze-from on at --finetune-lr). --out gets model.vizlab (use it with --model anywhere), log.json/csv, \
        loss.png, accuracy.png, confusion.png, top_losses.png and train.json; state/ lets --resume continue a killed run.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "The data folder.") var data: String
    @Option(help: "features, augment or finetune.") var mode: TrainConfig.Mode = .features
    @Option(help: "Output folder.") var out: String = "out/train"
    @Option(name: .customLong("base-layer"), help: "Where the base ends (default: the model's embedding; a spatial layer is flattened).") var baseLayer: String?
    @Option(help: "The new head before its classifier: dense:UNITS, relu, dropout:RATE, comma-separated, or none.") var head: String = "dense:256,relu,dropout:0.5"
    @Option(help: "Training input size (default: the model's).") var size: Int?
    @Option(help: "Epochs of the head stage (features / augment; the first stage of finetune).") var epochs: Int = 30
    @Option(name: .customLong("finetune-epochs"), help: "Epochs of fine-tuning.") var finetuneEpochs: Int = 10
    @Option(help: "Batch size.") var batch: Int = 32
    @Option(help: "rmsprop, adam or sgd (momentum 0.9).") var optimizer: OptimizerKind = .rmsprop
    @Option(help: "Learning rate of the head stage.") var lr: Float = 2e-5
    @Option(name: .customLong("finetune-lr"), help: "Learning rate of fine-tuning.") var finetuneLR: Float = 1e-5
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay (added to the gradient).") var weightDecay: Float = 0
    @Option(help: "constant, cosine or onecycle.") var schedule: Schedule = .constant
    @Option(help: "Stop a stage after this many epochs without a lower validation loss.") var patience: Int?
    @OptionGroup var augment: AugmentationOptions
    @Option(name: .customLong("class-weight"), help: "none, or balanced (weights n / (classes · count) for imbalanced folders).") var classWeight: TrainConfig.ClassWeight = .none
    @Option(name: .customLong("unfreeze-from"), help: "finetune: train the base from this layer on (blocks.12 on Lite0, block5_conv1 on VGG16).") var unfreezeFrom: String?
    @Flag(name: .customLong("end-to-end"), help: "finetune on plain images: run each step through the whole model (default: the frozen part's output is computed once).") var endToEnd = false
    @Flag(name: .customLong("train-bn"), help: "finetune: batch norms of the unfrozen part use batch statistics (default: frozen, inference mode).") var trainBN = false
    @Option(name: .customLong("validation-split"), help: "Fraction of each class folder held out for validation (DATA without train/).") var validationSplit: Double?
    @Option(help: "Seed: the same seed and thread count give the same weight bytes.") var seed: UInt64 = 0
    @Option(help: "Threads (kernels and BLAS).") var threads: Int = 2
    @Flag(help: "Continue from the last finished epoch in OUT/state (same options and data).") var resume = false
    @Flag(help: "Print train.json on stdout.") var json = false
    @Flag(help: "Time every forward layer and backward op of the run; the table of totals goes to stderr at the end.") var profile = false

    func validate() throws {
        guard epochs >= 1 && epochs <= 100_000 else { throw ValidationError("--epochs must be at least 1") }
        guard finetuneEpochs >= 1 && finetuneEpochs <= 100_000 else { throw ValidationError("--finetune-epochs must be at least 1") }
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be 1…4096") }
        guard lr > 0 && lr.isFinite && finetuneLR > 0 && finetuneLR.isFinite else { throw ValidationError("--lr and --finetune-lr must be positive") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be ≥ 0") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1…64") }
        if let s = size, !(16...4096).contains(s) { throw ValidationError("--size must be 16…4096") }
        if let p = patience, p < 1 { throw ValidationError("--patience must be at least 1") }
        if mode == .finetune && unfreezeFrom == nil { throw ValidationError("--mode finetune needs --unfreeze-from LAYER (blocks.12 on Lite0, block5_conv1 on VGG16)") }
        if mode != .finetune && (unfreezeFrom != nil || trainBN || endToEnd) { throw ValidationError("--unfreeze-from, --train-bn and --end-to-end go with --mode finetune") }
        _ = try HeadLayer.parse(head)
    }

    func run() throws {
        var config = TrainConfig()
        config.mode = mode; config.baseLayer = baseLayer; config.head = try HeadLayer.parse(head); config.size = size
        config.epochs = epochs; config.finetuneEpochs = finetuneEpochs; config.batch = batch; config.optimizer = optimizer
        config.lr = lr; config.finetuneLR = finetuneLR; config.momentum = momentum; config.weightDecay = weightDecay
        config.schedule = schedule; config.patience = patience; config.augmentation = augment.augmentation
        config.classWeight = classWeight; config.unfreezeFrom = unfreezeFrom; config.trainBN = trainBN; config.endToEnd = endToEnd
        config.validationSplit = validationSplit; config.seed = seed; config.threads = threads
        if mode == .features { config.augmentation = .none }

        let loaded = try CLI.loadModel(modelOptions)
        guard let base = loaded as? GraphModel else {
            CLI.fail("\(loaded.spec.weightsFile): vizlab trains graph models (built-ins, Keras files, bundles); an ONNX graph cannot be trained yet")
            throw ExitCode(2)
        }
        let progress = Progress()
        do {
            Parallel.setThreads(threads)
            let dataset = try ImageFolderDataset.load(URL(fileURLWithPath: data), validationSplit: validationSplit, seed: seed)
            progress.line("data: \(dataset.classes.count) classes; \(dataset.train.count) train, \(dataset.validation.count) validation, \(dataset.test.count) test images")
            for s in dataset.skipped { CLI.fail("skipped \(s.path): \(s.reason)") }
            let outURL = URL(fileURLWithPath: out)
            let trainer = try Trainer(config: config, data: dataset, base: base, out: outURL,
                                      cacheRoot: WeightStore.home.appendingPathComponent("features"), progress: progress)
            if profile { Profiler.reset(); Profiler.enabled = true }
            let result = try trainer.run(resume: resume)
            if profile {
                Profiler.enabled = false
                ProfileReport.write(header: "train, this run's totals", per: 1, unit: "run")
            }
            let report = try TrainReport.write(result, trainer: trainer, to: outURL)
            if json { try CLI.printJSON(report) } else {
                print(String(format: "%@ accuracy %.2f%% (loss %.4f) — best epoch: %@ %d (validation loss %.4f); %.1fs",
                             result.evaluatedOn, report.accuracy * 100, report.loss, report.best.stage, report.best.epoch, report.best.validationLoss, report.seconds))
                for name in dataset.classes {
                    print(String(format: "  %6.2f%%  %@", (report.perClassAccuracy[name] ?? 0) * 100, name))
                }
                print("model: \(report.bundle) (\(report.model)); reports in \(out)")
                if !dataset.skipped.isEmpty { print("skipped \(dataset.skipped.count) file(s): listed in train.json") }
            }
        } catch let e as TrainingError {
            CLI.fail(e.description)
            throw ExitCode(2)
        }
    }
}
