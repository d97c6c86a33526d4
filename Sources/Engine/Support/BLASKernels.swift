import Foundation

/// OpenBLAS picks its kernels from the CPU's identity when the library loads. Under some hypervisors (this
/// project's own CI machine: Zen 3 reported without a family OpenBLAS 0.3.21 knows) it falls back to "Prescott",
/// SSE3 kernels at about half the speed of the AVX2 + FMA ones the CPU runs. The choice can only be made before
/// the library loads, through `OPENBLAS_CORETYPE`; so a process on an AVX2 + FMA CPU without it sets it to Haswell
/// and re-executes itself, once. An explicit `OPENBLAS_CORETYPE` is left alone.
public enum BLASKernels {
    public static let variable = "OPENBLAS_CORETYPE"

    /// Whether /proc/cpuinfo lists both AVX2 and FMA.
    static var cpuHasAVX2AndFMA: Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let set = Set(flags.split(separator: " ").map(String.init))
        return set.contains("avx2") && set.contains("fma")
    }

    /// Re-executes the current program with `OPENBLAS_CORETYPE=Haswell` when that is unset and the CPU can run it.
    /// Returns only when no re-execution is needed (or it failed, in which case the default kernels serve).
    public static func ensureFastKernels() {
        #if os(Linux)
        guard getenv(variable) == nil, cpuHasAVX2AndFMA else { return }
        setenv(variable, "Haswell", 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        // execv returned: it failed; carry on with the kernels already loaded.
        #endif
    }
}
