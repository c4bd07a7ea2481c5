"""The vocabulary of the ops' C lowerings: strided loop nests (``loops``) and the emitter the
lowerings print statements with (``emitter``). Each op's C lowering is declared with the op, in
its family's module of ``symgrad/ops/``; the C printer (``symgrad.codegen.c``) looks it up.
May import: the standard library and ``symgrad.ir``.
"""
