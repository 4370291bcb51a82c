#!/usr/bin/python3
# Sets (argv[1] "1") or clears the immutable flag of /d/stuck.
import array, fcntl, os, sys
fd = os.open("/d/stuck", os.O_RDONLY | os.O_NOFOLLOW)
flags = array.array("i", [0])
fcntl.ioctl(fd, 0x80086601, flags, True)  # FS_IOC_GETFLAGS
flags[0] = flags[0] | 0x10 if sys.argv[1] == "1" else flags[0] & ~0x10  # FS_IMMUTABLE_FL
fcntl.ioctl(fd, 0x40086602, flags, True)  # FS_IOC_SETFLAGS
