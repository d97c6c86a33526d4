import Foundation

/// What `vizlab train` does, as data: every flag that changes the result. A run's state records it, and `--resume`
/// refuses to continue under another.
public struct TrainConfig: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// Frozen base run once (features cached), the head trained on the features.
        case features
        /// Frozen base end to end on augmented images, the head trained.
        case augment
        /// The head trained on features first, then the base unfrozen from a layer on, at a small learning rate.
        case finetune
    }
    public enum ClassWeight: String, Codable, Sendable, CaseIterable { case none, balanced }

    public var mode: Mode = .features
    /// Where the base ends (default: the model's embedding).
    public var baseLayer: String?
    public var head: [HeadLayer] = HeadLayer.keras
    /// Training input size (default: the model's).
    public var size: Int?
    /// Epochs of the head stage (features / augment), and of fine-tuning.
    public var epochs: Int = 30
    public var finetuneEpochs: Int = 10
    public var batch: Int = 32
    public var optimizer: OptimizerKind = .rmsprop
    /// Learning rate of the head stage and of fine-tuning (the tutorial's RMSprop 2e-5 and 1e-5).
    public var lr: Float = 2e-5
    public var finetuneLR: Float = 1e-5
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    public var schedule: Schedule = .constant
    /// Stop a stage after this many epochs without a lower validation loss (nil: never).
    public var patience: Int?
    /// Applied to training images in augment mode and while fine-tuning (validation is never augmented).
    public var augmentation: Augmentation = .tutorial
    public var classWeight: ClassWeight = .none
    public var unfreezeFrom: String?
    /// Batch norms of the unfrozen part use batch statistics (default: kept in inference mode).
    public var trainBN: Bool = false
    /// Fine-tuning on plain images runs every step through the whole model (by default the frozen part's output
    /// is computed once per image and the steps start from it: the same values, the frozen part not rerun).
    public var endToEnd: Bool = false
    public var validationSplit: Double?
    public var seed: UInt64 = 0
    public var threads: Int = 2

    public init() {}
}
