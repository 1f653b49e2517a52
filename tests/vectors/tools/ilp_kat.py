#!/usr/bin/env python3
"""Independent generator of the ILP known-answer vector in docs/ilp.md (and checked by
tests/unit/crypto/psp_test.cpp). Uses Python's `cryptography` (OpenSSL), not libie:
PSP key derivation (AES-CMAC, SP 800-108 counter mode) -> ILP header -> PSP v1 seal.
Run: python3 tests/vectors/tools/ilp_kat.py"""
import struct
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

master0 = bytes(range(0x00, 0x20))
master1 = bytes(range(0x20, 0x40))
spi = 0x00000101
version = 1
iv = 1
service_id, connection_id, flags = 1, 0x0102030405060708, 0x01
tlvs = bytes([1, 9]) + b"cache=off"  # app_options
inner = bytes.fromhex("4500001c000040004011b4c40a0000010a00000230393039000800") + b"\x00"

def derive(spi, version):
    master = master1 if spi & 0x80000000 else master0
    bits = 256 if version == 1 else 128
    out = b""
    for counter in range(1, bits // 128 + 1):
        c = CMAC(algorithms.AES(master))
        c.update(struct.pack(">I", counter) + (b"Pv1\0" if version == 1 else b"Pv0\0")
                 + struct.pack(">II", spi, bits))
        out += c.finalize()
    return out

key = derive(spi, version)
hlen = 12 + len(tlvs)
pad = (-hlen) % 4
ilp = struct.pack(">HQBB", service_id, connection_id, (hlen + pad) // 4, (1 << 6) | flags) + tlvs + b"\0" * pad
header = struct.pack(">BBBBIQ", 253, 1, 0, (version << 2) | 1, spi, iv)
nonce = struct.pack(">IQ", spi, iv)
sealed = AESGCM(key).encrypt(nonce, ilp + inner, header)
print("master_key_0 ", master0.hex())
print("master_key_1 ", master1.hex())
print("spi          %08x" % spi)
print("derived_key  ", key.hex())
print("iv           %016x" % iv)
print("ilp_header   ", ilp.hex())
print("inner        ", inner.hex())
print("packet       ", (header + sealed).hex())
