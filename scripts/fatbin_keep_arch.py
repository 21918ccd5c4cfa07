#!/usr/bin/env python3
"""Shrink a CUDA shared library for one GPU architecture, for carrying it to a GPU machine.

    fatbin_keep_arch.py IN.so SM OUT.so     # e.g. SM = 90 for H100/H200

A CUDA library's .nv_fatbin section holds, per kernel container, one cubin per target
architecture (onnxruntime 1.29's CUDA provider: sm_75, 80, 86, 89, 90, 120; 134 of its
230 MB). The CUDA driver loads only the entry matching the GPU, so this zeroes the payload
of every other entry in each container that also has a cubin for SM (containers without
one are left whole). The file keeps its size and layout (no offset moves, no relocation
changes); the zeros compress away, so xz shrinks the provider from 165 MB to 38 MB.

Fatbin layout (as documented by reverse engineering, e.g. cuobjdump's output): a container
header {u32 magic 0xBA55ED50, u16 version, u16 header size, u64 size of the entries},
then entries {u16 kind (1 PTX, 2 ELF cubin), u16 version, u32 header size, u64 padded
payload size, ..., u32 sm at byte 28}, each followed by its payload.
"""
import struct
import sys

MAGIC = 0xBA55ED50


def section(data, name):
    """Offset and size of the ELF64 section called name."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def sh(i):
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    for i in range(shnum):
        nm, _, _, _, off, size = sh(i)
        end = data.index(b"\0", stroff + nm)
        if data[stroff + nm:end].decode() == name:
            return off, size
    sys.exit(f"{sys.argv[1]}: no {name} section: not a CUDA library")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, keep, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = bytearray(open(src, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"{src}: not a 64-bit ELF file")
    off, size = section(data, ".nv_fatbin")
    p, end, kept, zeroed, containers = off, off + size, 0, 0, 0
    while p + 16 <= end:
        magic, _, hsz, fsz = struct.unpack_from("<IHHQ", data, p)
        if magic != MAGIC:  # padding between containers
            p += 8
            continue
        containers += 1
        entries, q, cend = [], p + hsz, p + hsz + fsz
        while q < cend:
            kind, _, ehs, psz = struct.unpack_from("<HHIQ", data, q)
            sm, = struct.unpack_from("<I", data, q + 28)
            entries.append((kind, sm, q + ehs, psz))
            q += ehs + psz
        if any(kind == 2 and sm == keep for kind, sm, _, _ in entries):
            for kind, sm, start, psz in entries:
                if sm == keep:
                    kept += psz
                else:
                    data[start:start + psz] = bytes(psz)
                    zeroed += psz
        p = cend
    if kept == 0:
        sys.exit(f"{src}: no cubin for sm_{keep}: it would not run on that GPU")
    with open(dst, "wb") as f:
        f.write(data)
    print(f"{dst}: {containers} fatbin containers, kept {kept / 1e6:.1f} MB of sm_{keep} cubins, zeroed {zeroed / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
