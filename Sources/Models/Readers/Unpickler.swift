import Engine
import Foundation

/// What the restricted unpickler can build: plain data plus references to tensors and storages.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list([PickleValue]), dict([(PickleValue, PickleValue)])
    /// A whitelisted callable, by qualified name ("torch._utils._rebuild_tensor_v2").
    case global(String)
    /// A storage named by a persistent id: dtype from the storage class, key, element count.
    case storage(StorageRef)
    case tensor(TensorRef)

    var int: Int? { if case .int(let v) = self { return v }; return nil }
    var string: String? { if case .string(let v) = self { return v }; return nil }
    var items: [PickleValue]? {
        switch self { case .tuple(let v), .list(let v): return v; default: return nil }
    }
}

struct StorageRef { var dtype: StorageType; var key: String; var count: Int }

struct TensorRef { var storage: StorageRef; var offset: Int; var size: [Int]; var stride: [Int] }

/// Element types of torch storages, by class name.
enum StorageType: String, CaseIterable {
    case FloatStorage, DoubleStorage, HalfStorage, BFloat16Storage, LongStorage, IntStorage, ShortStorage,
         CharStorage, ByteStorage, BoolStorage

    var elementSize: Int {
        switch self {
        case .DoubleStorage, .LongStorage: return 8
        case .FloatStorage, .IntStorage: return 4
        case .HalfStorage, .BFloat16Storage, .ShortStorage: return 2
        case .CharStorage, .ByteStorage, .BoolStorage: return 1
        }
    }
}

/// A pickle VM that understands only what a PyTorch state_dict needs. It never imports or calls anything:
/// the few allowed globals are recognised by name and rebuilt in Swift; any other global or opcode
/// (e.g. `os.system`, `builtins.eval`, INST/OBJ/NEWOBJ) is refused before anything happens.
struct RestrictedUnpickler {
    static let allowedGlobals: Set<String> = {
        var names: Set<String> = ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                  "torch._utils._rebuild_parameter"]
        for t in StorageType.allCases { names.insert("torch." + t.rawValue) }
        return names
    }()

    struct Refused: Error { let message: String }

    var reader: ByteReader
    /// The persistent-id tuple of the container format -> a storage reference.
    let persistentLoad: ([PickleValue]) throws -> PickleValue

    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(reader: ByteReader, persistentLoad: @escaping ([PickleValue]) throws -> PickleValue) {
        self.reader = reader; self.persistentLoad = persistentLoad
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw Refused(message: "malformed pickle (stack underflow)") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw Refused(message: "malformed pickle (no MARK)") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    private func memoized(_ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw Refused(message: "malformed pickle (memo \(i) unset)") }
        return v
    }

    private mutating func global(_ module: String, _ name: String) throws -> PickleValue {
        let qualified = module + "." + name
        guard Self.allowedGlobals.contains(qualified) else {
            throw Refused(message: "refused pickle global '\(qualified)' (only state_dict tensors are allowed)")
        }
        return .global(qualified)
    }

    private func line(_ r: inout ByteReader) throws -> String {
        var chars: [UInt8] = []
        while true {
            let b = try r.u8()
            if b == 0x0A { break }
            chars.append(b)
            if chars.count > 256 { throw Refused(message: "malformed pickle (GLOBAL name too long)") }
        }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Runs until STOP and returns the top of the stack.
    mutating func load() throws -> PickleValue {
        while true {
            let op = try reader.u8()
            switch op {
            case 0x80: _ = try reader.u8()                                 // PROTO
            case 0x95: _ = try reader.uint(8)                              // FRAME
            case 0x2E: return try pop()                                   // STOP
            case 0x28: marks.append(stack.count)                          // MARK
            case 0x7D: stack.append(.dict([]))                            // EMPTY_DICT
            case 0x5D: stack.append(.list([]))                            // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                           // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popMark()))                // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                  // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))
            case 0x71: memo[Int(try reader.u8())] = stack.last            // BINPUT
            case 0x72: memo[Int(try reader.uint(4))] = stack.last         // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                      // MEMOIZE
            case 0x68: stack.append(try memoized(Int(try reader.u8())))  // BINGET
            case 0x6A: stack.append(try memoized(Int(try reader.uint(4))))  // LONG_BINGET
            case 0x58: stack.append(.string(try reader.string(Int(try reader.uint(4)))))   // BINUNICODE
            case 0x8C: stack.append(.string(try reader.string(Int(try reader.u8()))))     // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try reader.string(Int(clamping: try reader.uint(8)))))  // BINUNICODE8
            case 0x43: stack.append(.bytes(Array(try reader.take(Int(try reader.u8())))))  // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try reader.take(Int(try reader.uint(4)))))) // BINBYTES
            case 0x4A: stack.append(.int(try reader.int32()))             // BININT
            case 0x4B: stack.append(.int(Int(try reader.u8())))           // BININT1
            case 0x4D: stack.append(.int(Int(try reader.uint(2))))        // BININT2
            case 0x8A:                                                    // LONG1
                let n = Int(try reader.u8())
                let bytes = Array(try reader.take(n))
                // Only values that fit in 64 bits matter here; the legacy magic number is 10 bytes and unused.
                var v: Int64 = 0
                for (i, b) in bytes.prefix(8).enumerated() { v |= Int64(b) << (8 * Int64(i)) }
                if n < 8, n > 0, bytes[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
                stack.append(.int(Int(v)))
            case 0x47:                                                    // BINFLOAT (big-endian)
                let raw = try reader.take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: raw)))
            case 0x88: stack.append(.bool(true))                          // NEWTRUE
            case 0x89: stack.append(.bool(false))                         // NEWFALSE
            case 0x4E: stack.append(.none)                                // NONE
            case 0x73, 0x75:                                              // SETITEM, SETITEMS
                let kv = op == 0x73 ? [try pop(), try pop()].reversed() : try popMark()
                guard kv.count % 2 == 0, case .dict(var d) = try pop() else { throw Refused(message: "malformed pickle (SETITEM)") }
                for i in stride(from: 0, to: kv.count, by: 2) { d.append((kv[i], kv[i + 1])) }
                stack.append(.dict(d))
            case 0x61, 0x65:                                              // APPEND, APPENDS
                let items = op == 0x61 ? [try pop()] : try popMark()
                guard case .list(var l) = try pop() else { throw Refused(message: "malformed pickle (APPEND)") }
                l += items
                stack.append(.list(l))
            case 0x63:                                                    // GLOBAL "module\nname\n"
                let module = try line(&reader), name = try line(&reader)
                stack.append(try global(module, name))
            case 0x93:                                                    // STACK_GLOBAL
                guard let name = try pop().string, let module = try pop().string else { throw Refused(message: "malformed pickle (STACK_GLOBAL)") }
                stack.append(try global(module, name))
            case 0x51:                                                    // BINPERSID
                guard let pid = try pop().items else { throw Refused(message: "malformed pickle (persistent id)") }
                stack.append(try persistentLoad(pid))
            case 0x52:                                                    // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args.items ?? []))
            case 0x62:                                                    // BUILD: only a state dict on an OrderedDict
                let state = try pop()
                guard case .dict = stack.last, case .dict = state else { throw Refused(message: "refused pickle BUILD on a non-dict") }
            default:
                throw Refused(message: String(format: "refused pickle opcode 0x%02x at byte %d", op, reader.offset - 1))
            }
        }
    }

    /// The only "calls" a state_dict contains, rebuilt in Swift.
    private func reduce(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
        guard case .global(let name) = callable else { throw Refused(message: "refused pickle REDUCE on a non-global") }
        switch name {
        case "collections.OrderedDict":
            return .dict([])
        case "torch._utils._rebuild_tensor_v2":
            guard args.count >= 4, case .storage(let s) = args[0], let offset = args[1].int,
                  let size = args[2].items?.compactMap(\.int), let stride = args[3].items?.compactMap(\.int),
                  size.count == args[2].items?.count, stride.count == size.count else {
                throw Refused(message: "malformed _rebuild_tensor_v2 arguments")
            }
            return .tensor(TensorRef(storage: s, offset: offset, size: size, stride: stride))
        case "torch._utils._rebuild_parameter":
            guard let first = args.first, case .tensor = first else { throw Refused(message: "malformed _rebuild_parameter") }
            return first
        default:
            throw Refused(message: "refused pickle call to '\(name)'")
        }
    }
}
