"""pycparser-backed signatures of function primitives."""

import pytest

from nvmm_port.analysis.cdecl import SignatureError, parse_signature


@pytest.mark.parametrize("text,returns,types", [
    ("int os_x(struct vm_map *, vaddr_t *, vsize_t, os_vmobj_t *, voff_t, bool, int);", "int",
     ["struct vm_map *", "vaddr_t *", "vsize_t", "os_vmobj_t *", "voff_t", "bool", "int"]),
    ("os_vmspace_t *\tos_y(vaddr_t lo, vaddr_t hi);", "os_vmspace_t *", ["vaddr_t", "vaddr_t"]),
    ("paddr_t os_z(void);", "paddr_t", []),
    ("static inline void\nos_w(os_cpu_t *cpu, void (*func)(void *), void *arg)\n{\n\tdo_it(cpu);\n}", "void",
     ["os_cpu_t *", "void (*)(void *)", "void *"]),
    ("const char *os_v(const my_t *p, unsigned long n);", "const char *", ["const my_t *", "unsigned long"]),
])
def test_signatures(text, returns, types):
    sig = parse_signature(text)
    assert sig.returns == returns
    assert [p.type for p in sig.params] == types


def test_parameter_names_are_kept():
    sig = parse_signature("void f(os_cpu_t *cpu, void *arg, size_t);")
    assert [p.name for p in sig.params] == ["cpu", "arg", ""]


def test_not_a_function():
    with pytest.raises(SignatureError):
        parse_signature("typedef struct lock os_mtx_t;")
