#!/usr/bin/python3
# What statx answers here: the errno's name, or "answered".
import ctypes, errno, platform
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": 332, "aarch64": 291}[platform.machine()]
r = libc.syscall(nr, -100, b"/", 0, 0, ctypes.create_string_buffer(256))
print(errno.errorcode[ctypes.get_errno()] if r < 0 else "answered")
