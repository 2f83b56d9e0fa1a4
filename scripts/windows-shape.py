"""The two files build-windows-shape.sh cannot get from a package: an empty
registry hive (regf) that hivexsh then fills, and the header of an x86-64
console program (PE32+) standing for cmd.exe, which libguestfs reads to
tell a Windows system's architecture.

    windows-shape.py hive OUT   an empty hive: a base block and one bin
                                holding the root key and its security cell
    windows-shape.py pe OUT     an MZ stub, the PE signature, a COFF header
                                for x86-64 and a PE32+ optional header
                                (console subsystem), no sections
"""
import struct
import sys

BLOCK = 4096


def cell(payload):
    """An allocated cell: its size (negative: in use) and PAYLOAD, padded
    to a multiple of 8."""
    size = (4 + len(payload) + 7) // 8 * 8
    return struct.pack("<i", -size) + payload + b"\0" * (size - 4 - len(payload))


def hive():
    root_off = 0x20                      # offsets count from the first bin
    name = b"ROOT"
    nk_len = 4 + 0x4C + len(name)
    nk_size = (nk_len + 7) // 8 * 8
    sk_off = root_off + nk_size
    # A self-relative security descriptor with no owner, group or ACLs.
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
    sk = b"sk" + struct.pack("<HIIII", 0, sk_off, sk_off, 1, len(sd)) + sd
    nk = (b"nk" + struct.pack("<H", 0x2C) + struct.pack("<Q", 0) +
          struct.pack("<15I", 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0xFFFFFFFF,
                      sk_off, 0xFFFFFFFF, 0, 0, 0, 0, 0) +
          struct.pack("<HH", len(name), 0) + name)
    assert len(nk) == 0x4C + len(name)
    cells = cell(nk) + cell(sk)
    free = BLOCK - 0x20 - len(cells)
    hbin = (b"hbin" + struct.pack("<III", 0, BLOCK, 0) + b"\0" * 16 + cells +
            struct.pack("<i", free) + b"\0" * (free - 4))
    assert len(hbin) == BLOCK
    base = bytearray(BLOCK)
    struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, 0, 1, 3, 0, 1, root_off, BLOCK, 1)
    csum = 0
    for (word,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        csum ^= word
    struct.pack_into("<I", base, 0x1FC, csum)
    return bytes(base) + hbin


def pe():
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 0xF0, 0x0022)
    opt = bytearray(0xF0)
    struct.pack_into("<H", opt, 0, 0x20B)          # PE32+
    struct.pack_into("<Q", opt, 24, 0x140000000)    # image base
    struct.pack_into("<II", opt, 32, 0x1000, 0x200)  # section and file alignment
    struct.pack_into("<HH", opt, 40, 6, 0)          # OS version
    struct.pack_into("<HH", opt, 48, 6, 0)          # subsystem version
    struct.pack_into("<II", opt, 56, 0x1000, 0x200)  # image and headers size
    struct.pack_into("<H", opt, 68, 3)              # console
    struct.pack_into("<I", opt, 108, 16)            # data directories
    return bytes(dos) + b"PE\0\0" + coff + bytes(opt)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("hive", "pe"):
        sys.stderr.write("usage: windows-shape.py hive|pe OUT\n")
        return 2
    with open(argv[2], "wb") as f:
        f.write(hive() if argv[1] == "hive" else pe())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
