#!/usr/bin/python3
import os
os.write(1, "".join("line %05d\n" % i for i in range(5000)).encode())
