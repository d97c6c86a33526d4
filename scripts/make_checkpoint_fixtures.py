#!/usr/bin/env python3
"""Writes the small checkpoint fixtures under Tests/EngineTests/Fixtures/checkpoint/ (committed).

Python's own pickle produces the bytes, mimicking torch.save's layouts (legacy `_legacy_save` and zip `_save`)
with stand-in `torch` modules, so the Swift reader is tested against an independent producer. Expected values
are computed here by applying sizes/strides, and written to expected.json. Needs only the standard library.
"""
import collections, io, json, os, pickle, struct, sys, types, zipfile

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EngineTests", "Fixtures", "checkpoint")

# Stand-ins so pickle writes GLOBAL 'torch._utils _rebuild_tensor_v2' and 'torch FloatStorage' etc.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
def _rebuild_tensor_v2(*args): raise RuntimeError("never called")
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
STORAGE_TYPES = {"f": ("FloatStorage", "<f", 4), "q": ("LongStorage", "<q", 8), "e": ("HalfStorage", "<e", 2)}
for name, _, _ in STORAGE_TYPES.values():
    cls = type(name, (), {}); cls.__module__ = "torch"; setattr(torch, name, cls)

class Storage:
    def __init__(self, key, kind, values): self.key, self.kind, self.values = key, kind, values
    def raw(self): return struct.pack("<%d%s" % (len(self.values), STORAGE_TYPES[self.kind][1][1]), *self.values)

class TensorView:
    def __init__(self, storage, offset, size, stride): self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()))
    def values(self):
        out = []
        def walk(d, base):
            if d == len(self.size): out.append(self.storage.values[base]); return
            for i in range(self.size[d]): walk(d + 1, base + i * self.stride[d])
        walk(0, self.offset)
        return out

class Pickler(pickle.Pickler):
    def __init__(self, f, legacy):
        super().__init__(f, protocol=2); self.legacy = legacy
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            cls = getattr(torch, STORAGE_TYPES[obj.kind][0])
            pid = ("storage", cls, obj.key, "cpu", len(obj.values))
            return pid + (None,) if self.legacy else pid
        return None

def state_dict():
    hwio = Storage("100", "f", [float(v) / 8 for v in range(24)])          # a conv weight stored TF-style (HWIO)
    shared = Storage("200", "f", [0.5, -1.0, 2.0, 3.5, -4.25, 5.0, 9.0, 8.0, 7.0])
    counter = Storage("300", "q", [7])
    half = Storage("400", "e", [1.5, -2.0, 65504.0, 0.000061035156])
    sd = collections.OrderedDict()
    sd["conv.weight"] = TensorView(hwio, 0, [2, 3, 2, 2], [1, 2, 12, 6])   # OIHW view over HWIO storage
    sd["fc.weight"] = TensorView(shared, 0, [2, 3], [1, 2])                # transposed view
    sd["fc.bias"] = TensorView(shared, 6, [3], [1])                        # same storage, offset 6
    sd["bn.num_batches_tracked"] = TensorView(counter, 0, [], [])
    sd["half"] = TensorView(half, 0, [4], [1])
    return sd

def storages(sd):
    seen = collections.OrderedDict()
    for t in sd.values(): seen.setdefault(t.storage.key, t.storage)
    return list(seen.values())

def legacy_bytes(sd, body=None):
    f = io.BytesIO()
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
    if body is not None:
        f.write(body)
        pickle.dump([], f, protocol=2)
        return f.getvalue()
    Pickler(f, legacy=True).dump(sd)
    stores = storages(sd)
    pickle.dump([s.key for s in stores], f, protocol=2)
    for s in stores:
        f.write(struct.pack("<q", len(s.values))); f.write(s.raw())
    return f.getvalue()

def zip_bytes(sd, body=None):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        pk = io.BytesIO()
        if body is None: Pickler(pk, legacy=False).dump(sd)
        else: pk.write(body)
        z.writestr("archive/data.pkl", pk.getvalue())
        z.writestr("archive/byteorder", "little")
        for s in storages(sd): z.writestr("archive/data/" + s.key, s.raw())
        z.writestr("archive/version", "3\n")
    return f.getvalue()

# GLOBAL os.system, then REDUCE with ('true',): what a hostile checkpoint looks like.
MALICIOUS = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
EVAL = b"\x80\x02cbuiltins\neval\nq\x00X\x01\x00\x00\x001\x85Rq\x01."

def safetensors_bytes():
    tensors = [("a", "F32", [2, 2], struct.pack("<4f", 1.0, -2.0, 3.25, 4.5)),
               ("b", "F16", [3], struct.pack("<3e", 0.5, -1.0, 2048.0)),
               ("step", "I64", [], struct.pack("<q", 42))]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}; offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)

def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    legacy = legacy_bytes(sd)
    files = {
        "legacy.pth": legacy,
        "zip.pt": zip_bytes(sd),
        "malicious_legacy.pth": legacy_bytes(sd, body=MALICIOUS),
        "malicious_zip.pt": zip_bytes(sd, body=MALICIOUS),
        "eval_legacy.pth": legacy_bytes(sd, body=EVAL),
        "truncated_legacy.pth": legacy[: len(legacy) - 20],
        "weights.safetensors": safetensors_bytes(),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f: f.write(data)
    expected = {k: {"shape": t.size, "values": t.values()} for k, t in sd.items()}
    expected["__safetensors__"] = {"a": [1.0, -2.0, 3.25, 4.5], "b": [0.5, -1.0, 2048.0], "step": [42]}
    with open(os.path.join(OUT, "expected.json"), "w") as f: json.dump(expected, f, indent=1)
    print("wrote", ", ".join(sorted(files)), "to", os.path.normpath(OUT))

if __name__ == "__main__":
    main()
