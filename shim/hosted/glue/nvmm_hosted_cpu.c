// SPDX-License-Identifier: BSD-2-Clause
/*
 * The fake CPU: a small interpreter of x86 guest code, so that upstream's test programs, which run
 * real guest code, get the VM exits the hardware would give them.
 *
 * Written from the Intel SDM (Vol. 2: instruction formats, ModR/M and SIB tables, the semantics of
 * the instructions below; Vol. 3A chapter 4: 4-level paging) and NVMM's exit interface
 * (nvmm_x86.h).  It knows 64-bit mode, real mode and flat protected mode, and these instructions:
 *
 *   register forms, executed   MOV r,imm  MOV r/m,imm  MOV r,r  ADD/OR/AND/SUB/XOR/CMP/TEST/XCHG
 *                              INC/DEC  MOVZX/MOVSX  NOP  Jcc/JMP rel8/rel32  CPUID  HLT
 *   memory operands            an exit when the page is not entered in the guest's nested table
 *                              (MEMORY: the frontend faults RAM in, userland emulates MMIO); in RAM,
 *                              MOV loads and stores are executed, other operations are not modelled
 *   exits                      IN/OUT/INS/OUTS (IO)  RDMSR  WRMSR  CPUID (when configured)  HLT
 *
 * What it does not model (an EXIT_INVALID with hwcode 0x1000000 | reason, below): guest page
 * faults and other exceptions (no IDT), interrupt delivery, segment limits and checks, 32-bit
 * paging, A/D bit updates, any other instruction (hwcode: the opcode, 0x0Fxx for two bytes).
 * Upstream world: NVMM's types; each instruction commits its effects only once all its accesses
 * succeeded, so an exit leaves the guest at the start of the instruction, as hardware does.
 */

#include "nvmm_hosted_fake.h"

#define FAKE_NOT_MODELLED	0x1000000ULL
#define FAKE_GUEST_PF		(FAKE_NOT_MODELLED | 14)	/* a guest #PF: no IDT here */
#define FAKE_RAM_ALU		(FAKE_NOT_MODELLED | 0x100)	/* a non-MOV operation on RAM */
#define FAKE_MODE		(FAKE_NOT_MODELLED | 0x200)	/* 32-bit paging, or no code size */

#define FLAG_CF		0x0001ULL
#define FLAG_PF		0x0004ULL
#define FLAG_AF		0x0010ULL
#define FLAG_ZF		0x0040ULL
#define FLAG_SF		0x0080ULL
#define FLAG_DF		0x0400ULL
#define FLAG_OF		0x0800ULL
#define FLAGS_ARITH	(FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF)

#define PTE_P		0x001ULL
#define PTE_W		0x002ULL
#define PTE_PS		0x080ULL
#define PTE_NX		0x8000000000000000ULL
#define PTE_FRAME	0x000FFFFFFFFFF000ULL

struct fake {
	struct nvmm_machine *mach;
	struct nvmm_hosted_vcpu *vc;
	struct nvmm_vcpu_exit *exit;
	uint64_t *gprs;
	int mode;		/* 2, 4 or 8: the code's default address size (16, 32, 64 bits) */
};

struct insn {
	uint8_t bytes[15];
	size_t len;
	int opsize;		/* the v-size: 2, 4 or 8 */
	int adsize;		/* 2, 4 or 8 */
	int rex;
	int seg;		/* segment override, NVMM_X64_SEG_*, or -1 */
	bool rep;
	unsigned int op;	/* 0x0Fxx for two-byte opcodes */
	bool modrm;
	int mod, reg, rm;
	bool mem;		/* the ModR/M operand is memory */
	uint64_t ea;		/* its effective address (offset in its segment) */
	int ea_seg;
	uint64_t imm;
};

/* Exits */

static int
fake_exit_invalid(struct fake *f, uint64_t hwcode)
{
	f->exit->reason = NVMM_VCPU_EXIT_INVALID;
	f->exit->u.inv.hwcode = hwcode;
	return 1;
}

static int
fake_exit_memory(struct fake *f, uint64_t gpa, int prot)
{
	memset(&f->exit->u, 0, sizeof(f->exit->u));
	f->exit->reason = NVMM_VCPU_EXIT_MEMORY;
	f->exit->u.mem.gpa = gpa;
	f->exit->u.mem.prot = prot;
	f->exit->u.mem.inst_len = 0;	/* userland fetches the instruction itself (as on VMX) */
	return 1;
}

/* Guest memory */

static uint8_t *
fake_gpa(struct fake *f, uint64_t gpa, int prot)
{
	return nvmm_hosted_gpa_page(f->mach->vm, gpa, prot);
}

/* Linear address -> guest-physical, through the guest's page tables when paging is on. */
static int
fake_translate(struct fake *f, uint64_t lin, int prot, uint64_t *gpa)
{
	const struct nvmm_x64_state *s = &f->vc->state;
	uint64_t table, entry, *p;
	int level, shift;

	if ((s->crs[NVMM_X64_CR_CR0] & CR0_PG) == 0) {
		*gpa = f->mode == 8 ? lin : lin & 0xFFFFFFFFULL;
		return 0;
	}
	if ((s->msrs[NVMM_X64_MSR_EFER] & EFER_LMA) == 0)
		return fake_exit_invalid(f, FAKE_MODE);

	table = s->crs[NVMM_X64_CR_CR3] & PTE_FRAME;
	for (level = 4, shift = 39; level >= 1; level--, shift -= 9) {
		uint64_t where = table + ((lin >> shift) & 0x1FF) * 8;

		p = (uint64_t *)fake_gpa(f, where, PROT_READ);
		if (p == NULL)
			return fake_exit_memory(f, where, PROT_READ);
		entry = *p;
		if ((entry & PTE_P) == 0)
			return fake_exit_invalid(f, FAKE_GUEST_PF);
		if ((prot & PROT_WRITE) && (entry & PTE_W) == 0 &&
		    (s->crs[NVMM_X64_CR_CR0] & CR0_WP))
			return fake_exit_invalid(f, FAKE_GUEST_PF);
		if ((prot & PROT_EXEC) && (entry & PTE_NX) &&
		    (s->msrs[NVMM_X64_MSR_EFER] & EFER_NXE))
			return fake_exit_invalid(f, FAKE_GUEST_PF);
		if ((level == 3 || level == 2) && (entry & PTE_PS)) {
			uint64_t span = 1ULL << shift;

			*gpa = (entry & PTE_FRAME & ~(span - 1)) | (lin & (span - 1));
			return 0;
		}
		table = entry & PTE_FRAME;
	}
	*gpa = table | (lin & 0xFFF);
	return 0;
}

/* Copy n bytes at linear address lin from (or, with write, to) RAM; an exit when not RAM. */
static int
fake_access(struct fake *f, uint64_t lin, void *buf, size_t n, int prot)
{
	uint8_t *b = buf, *p;
	uint64_t gpa;
	size_t i;

	for (i = 0; i < n; i++) {
		if (fake_translate(f, lin + i, prot, &gpa))
			return 1;
		p = fake_gpa(f, gpa, prot);
		if (p == NULL)
			return fake_exit_memory(f, gpa, prot);
		if (prot & PROT_WRITE)
			*p = b[i];
		else
			b[i] = *p;
	}
	return 0;
}

static uint64_t
fake_seg_base(struct fake *f, int seg)
{
	const struct nvmm_x64_state *s = &f->vc->state;

	if (f->mode == 8 && seg != NVMM_X64_SEG_FS && seg != NVMM_X64_SEG_GS)
		return 0;
	return s->segs[seg].base;
}

static uint64_t
fake_linear(struct fake *f, int seg, uint64_t off, int adsize)
{
	if (adsize == 2)
		off &= 0xFFFF;
	else if (adsize == 4)
		off &= 0xFFFFFFFFULL;
	return fake_seg_base(f, seg) + off;
}

/* Registers */

static uint64_t
size_mask(int size)
{
	return size == 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static uint64_t
reg_get(struct fake *f, const struct insn *in, int reg, int size)
{
	if (size == 1 && in->rex == 0 && reg >= 4 && reg < 8)
		return (f->gprs[reg - 4] >> 8) & 0xFF;		/* AH, CH, DH, BH */
	return f->gprs[reg] & size_mask(size);
}

static void
reg_set(struct fake *f, const struct insn *in, int reg, int size, uint64_t val)
{
	uint64_t *r;

	if (size == 1 && in->rex == 0 && reg >= 4 && reg < 8) {
		r = &f->gprs[reg - 4];
		*r = (*r & ~0xFF00ULL) | ((val & 0xFF) << 8);
		return;
	}
	r = &f->gprs[reg];
	if (size == 4 && f->mode == 8)
		*r = val & 0xFFFFFFFFULL;		/* 32-bit results zero-extend in 64-bit mode */
	else
		*r = (*r & ~size_mask(size)) | (val & size_mask(size));
}

/* Decoding (Intel SDM Vol. 2, chapter 2) */

static int
fetch(struct fake *f, struct insn *in, size_t n, uint64_t *val)
{
	size_t i;

	*val = 0;
	if (in->len + n > sizeof(in->bytes))
		return fake_exit_invalid(f, FAKE_NOT_MODELLED | 0x0D);	/* too long: #GP */
	if (fake_access(f, fake_linear(f, NVMM_X64_SEG_CS,
	    f->gprs[NVMM_X64_GPR_RIP] + in->len, f->mode), in->bytes + in->len, n, PROT_EXEC))
		return 1;
	for (i = 0; i < n; i++)
		*val |= (uint64_t)in->bytes[in->len + i] << (8 * i);
	in->len += n;
	return 0;
}

static uint64_t
sext(uint64_t v, int bytes)
{
	int shift = 64 - 8 * bytes;

	return (uint64_t)((int64_t)(v << shift) >> shift);
}

static int
decode_modrm(struct fake *f, struct insn *in)
{
	uint64_t b, sib, disp = 0;
	int base, index;

	if (fetch(f, in, 1, &b))
		return 1;
	in->modrm = true;
	in->mod = (int)(b >> 6);
	in->reg = (int)((b >> 3) & 7) | ((in->rex & 4) ? 8 : 0);
	in->rm = (int)(b & 7);
	in->mem = in->mod != 3;
	if (!in->mem) {
		in->rm |= (in->rex & 1) ? 8 : 0;
		return 0;
	}
	in->ea_seg = NVMM_X64_SEG_DS;
	if (in->adsize == 2) {
		/* 16-bit forms: BX+SI BX+DI BP+SI BP+DI SI DI BP|disp16 BX */
		static const int r1[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };
		static const int r2[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };

		if (in->mod == 0 && in->rm == 6) {
			if (fetch(f, in, 2, &disp))
				return 1;
			in->ea = disp;
		} else {
			in->ea = f->gprs[r1[in->rm]] + (r2[in->rm] >= 0 ? f->gprs[r2[in->rm]] : 0);
			if (in->rm == 2 || in->rm == 3 || in->rm == 6)
				in->ea_seg = NVMM_X64_SEG_SS;
			if (in->mod == 1 && fetch(f, in, 1, &disp) == 0)
				in->ea += sext(disp, 1);
			else if (in->mod == 2 && fetch(f, in, 2, &disp) == 0)
				in->ea += disp;
			else if (in->mod != 0)
				return 1;
		}
		in->ea &= 0xFFFF;
		return 0;
	}
	base = in->rm;
	if (base == 4) {
		if (fetch(f, in, 1, &sib))
			return 1;
		index = (int)((sib >> 3) & 7) | ((in->rex & 2) ? 8 : 0);
		base = (int)(sib & 7);
		in->ea = index == 4 ? 0 : f->gprs[index] << (sib >> 6);
		if (base == 5 && in->mod == 0) {
			if (fetch(f, in, 4, &disp))
				return 1;
			in->ea += sext(disp, 4);
		} else {
			base |= (in->rex & 1) ? 8 : 0;
			in->ea += f->gprs[base];
		}
	} else if (base == 5 && in->mod == 0) {
		if (fetch(f, in, 4, &disp))
			return 1;
		/* RIP-relative in 64-bit mode: fixed up once the length is known (execute()) */
		in->ea = sext(disp, 4);
		if (f->mode == 8)
			in->ea_seg = -2;
	} else {
		base |= (in->rex & 1) ? 8 : 0;
		in->ea = f->gprs[base];
	}
	if ((base & 7) == 4 || (base & 7) == 5) {
		if ((base & 7) == 4 || in->mod != 0)
			in->ea_seg = in->ea_seg == -2 ? -2 : NVMM_X64_SEG_SS;
	}
	if (in->mod == 1) {
		if (fetch(f, in, 1, &disp))
			return 1;
		in->ea += sext(disp, 1);
	} else if (in->mod == 2) {
		if (fetch(f, in, 4, &disp))
			return 1;
		in->ea += sext(disp, 4);
	}
	return 0;
}

static int
fetch_imm(struct fake *f, struct insn *in, int size)
{
	uint64_t v;

	if (fetch(f, in, (size_t)(size == 8 ? 4 : size), &v))
		return 1;
	in->imm = size == 8 ? sext(v, 4) : v;
	return 0;
}

/* Arithmetic (RFLAGS as Vol. 1, appendix A describes for each) */

static uint64_t
parity(uint64_t v)
{
	return (__builtin_popcountll(v & 0xFF) & 1) == 0 ? FLAG_PF : 0;
}

/* op: the ALU's /digit: 0 ADD, 1 OR, 4 AND, 5 SUB, 6 XOR, 7 CMP; 8 TEST.  Returns the result. */
static int
alu(struct fake *f, int op, uint64_t a, uint64_t b, int size, uint64_t *res)
{
	uint64_t m = size_mask(size), sign = 1ULL << (size * 8 - 1), r, fl = 0;
	uint64_t *rflags = &f->gprs[NVMM_X64_GPR_RFLAGS];

	a &= m;
	b &= m;
	switch (op) {
	case 0:
		r = (a + b) & m;
		fl |= r < a ? FLAG_CF : 0;
		fl |= (~(a ^ b) & (a ^ r) & sign) ? FLAG_OF : 0;
		fl |= ((a ^ b ^ r) & 0x10) ? FLAG_AF : 0;
		break;
	case 5:
	case 7:
		r = (a - b) & m;
		fl |= a < b ? FLAG_CF : 0;
		fl |= ((a ^ b) & (a ^ r) & sign) ? FLAG_OF : 0;
		fl |= ((a ^ b ^ r) & 0x10) ? FLAG_AF : 0;
		break;
	case 1:
		r = a | b;
		break;
	case 4:
	case 8:
		r = a & b;
		break;
	case 6:
		r = a ^ b;
		break;
	default:
		return fake_exit_invalid(f, FAKE_NOT_MODELLED | 0x300 | (uint64_t)op);	/* ADC, SBB */
	}
	fl |= r == 0 ? FLAG_ZF : 0;
	fl |= (r & sign) ? FLAG_SF : 0;
	fl |= parity(r);
	*rflags = (*rflags & ~FLAGS_ARITH) | fl;
	*res = r;
	return 0;
}

static bool
condition(uint64_t fl, unsigned int cc)
{
	bool of = (fl & FLAG_OF) != 0, sf = (fl & FLAG_SF) != 0, zf = (fl & FLAG_ZF) != 0;
	bool cf = (fl & FLAG_CF) != 0, pf = (fl & FLAG_PF) != 0, r;

	switch (cc >> 1) {
	case 0: r = of; break;
	case 1: r = cf; break;
	case 2: r = zf; break;
	case 3: r = cf || zf; break;
	case 4: r = sf; break;
	case 5: r = pf; break;
	case 6: r = sf != of; break;
	default: r = zf || sf != of; break;
	}
	return (cc & 1) ? !r : r;
}

/* Execution */

static uint64_t
npc(struct fake *f, const struct insn *in)
{
	return (f->gprs[NVMM_X64_GPR_RIP] + in->len) & size_mask(f->mode);
}

static void
advance(struct fake *f, const struct insn *in)
{
	f->gprs[NVMM_X64_GPR_RIP] = npc(f, in);
}

/* The ModR/M memory operand's linear address. */
static uint64_t
operand_linear(struct fake *f, const struct insn *in)
{
	if (in->ea_seg == -2)	/* RIP-relative */
		return npc(f, in) + in->ea;
	return fake_linear(f, in->seg >= 0 ? in->seg : in->ea_seg, in->ea, in->adsize);
}

/*
 * A memory operand: only MOV touches RAM here; anything else on memory must be MMIO, which the
 * access turns into a MEMORY exit (or, in RAM, FAKE_RAM_ALU).
 */
static int
mem_load(struct fake *f, uint64_t lin, int size, uint64_t *val, bool mov)
{
	uint64_t v = 0;

	if (!mov) {
		uint64_t gpa;

		if (fake_translate(f, lin, PROT_READ, &gpa))
			return 1;
		if (fake_gpa(f, gpa, PROT_READ) == NULL)
			return fake_exit_memory(f, gpa, PROT_READ);
		return fake_exit_invalid(f, FAKE_RAM_ALU);
	}
	if (fake_access(f, lin, &v, (size_t)size, PROT_READ))
		return 1;
	*val = v;
	return 0;
}

static int
mem_store(struct fake *f, uint64_t lin, int size, uint64_t val)
{
	return fake_access(f, lin, &val, (size_t)size, PROT_WRITE);
}

static int
exit_io(struct fake *f, const struct insn *in, bool is_in, bool str, int size, uint16_t port)
{
	if (str && in->rep && (f->gprs[NVMM_X64_GPR_RCX] & size_mask(in->adsize)) == 0) {
		advance(f, in);		/* REP with a zero count does nothing */
		return 0;
	}
	memset(&f->exit->u, 0, sizeof(f->exit->u));
	f->exit->reason = NVMM_VCPU_EXIT_IO;
	f->exit->u.io.in = is_in;
	f->exit->u.io.port = port;
	f->exit->u.io.seg = (int8_t)in->seg;
	f->exit->u.io.address_size = (uint8_t)in->adsize;
	f->exit->u.io.operand_size = (uint8_t)size;
	f->exit->u.io.rep = in->rep;
	f->exit->u.io.str = str;
	f->exit->u.io.npc = npc(f, in);
	return 1;
}

static int
exec_cpuid(struct fake *f, const struct insn *in)
{
	struct nvmm_hosted_vcpu *vc = f->vc;
	uint32_t leaf = (uint32_t)f->gprs[NVMM_X64_GPR_RAX], a, b, c, d;
	size_t i;

	for (i = 0; i < NVMM_HOSTED_NCPUIDS; i++) {
		if (!vc->cpuidpresent[i] || vc->cpuid[i].leaf != leaf)
			continue;
		if (vc->cpuid[i].exit) {
			memset(&f->exit->u, 0, sizeof(f->exit->u));
			f->exit->reason = NVMM_VCPU_EXIT_CPUID;
			f->exit->u.insn.npc = npc(f, in);
			return 1;
		}
	}
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
	    : "a"(leaf), "c"((uint32_t)f->gprs[NVMM_X64_GPR_RCX]));
	for (i = 0; i < NVMM_HOSTED_NCPUIDS; i++) {
		if (!vc->cpuidpresent[i] || vc->cpuid[i].leaf != leaf || !vc->cpuid[i].mask)
			continue;
		a = (a & ~vc->cpuid[i].u.mask.del.eax) | vc->cpuid[i].u.mask.set.eax;
		b = (b & ~vc->cpuid[i].u.mask.del.ebx) | vc->cpuid[i].u.mask.set.ebx;
		c = (c & ~vc->cpuid[i].u.mask.del.ecx) | vc->cpuid[i].u.mask.set.ecx;
		d = (d & ~vc->cpuid[i].u.mask.del.edx) | vc->cpuid[i].u.mask.set.edx;
	}
	f->gprs[NVMM_X64_GPR_RAX] = a;
	f->gprs[NVMM_X64_GPR_RBX] = b;
	f->gprs[NVMM_X64_GPR_RCX] = c;
	f->gprs[NVMM_X64_GPR_RDX] = d;
	advance(f, in);
	return 0;
}

/* r/m operand of the given size: its value (register, or memory through mem_load). */
static int
rm_get(struct fake *f, const struct insn *in, int size, uint64_t *v, bool mov)
{
	if (!in->mem) {
		*v = reg_get(f, in, in->rm, size);
		return 0;
	}
	return mem_load(f, operand_linear(f, in), size, v, mov);
}

static int
rm_set(struct fake *f, const struct insn *in, int size, uint64_t v, bool mov)
{
	if (!in->mem) {
		reg_set(f, in, in->rm, size, v);
		return 0;
	}
	if (!mov) {
		uint64_t dummy;

		return mem_load(f, operand_linear(f, in), size, &dummy, false);
	}
	return mem_store(f, operand_linear(f, in), size, v);
}

/* One instruction: 0 when it retired, 1 when it caused an exit (described in f->exit). */
static int
step(struct fake *f)
{
	struct insn in;
	uint64_t b, v, r, src;
	int size, op;

	memset(&in, 0, sizeof(in));
	in.opsize = f->mode == 2 ? 2 : 4;
	in.adsize = f->mode;
	in.seg = -1;

	/* Legacy prefixes, then REX in 64-bit mode. */
	for (;;) {
		if (fetch(f, &in, 1, &b))
			return 1;
		switch (b) {
		case 0x66: in.opsize = f->mode == 2 ? 4 : 2; continue;
		case 0x67: in.adsize = f->mode == 4 ? 2 : 4; continue;
		case 0xF3: in.rep = true; continue;
		case 0xF2: in.rep = true; continue;
		case 0x26: in.seg = NVMM_X64_SEG_ES; continue;
		case 0x2E: in.seg = NVMM_X64_SEG_CS; continue;
		case 0x36: in.seg = NVMM_X64_SEG_SS; continue;
		case 0x3E: in.seg = NVMM_X64_SEG_DS; continue;
		case 0x64: in.seg = NVMM_X64_SEG_FS; continue;
		case 0x65: in.seg = NVMM_X64_SEG_GS; continue;
		}
		break;
	}
	if (f->mode == 8 && (b & 0xF0) == 0x40) {
		in.rex = (int)b;
		if (b & 8)
			in.opsize = 8;
		if (fetch(f, &in, 1, &b))
			return 1;
	}
	in.op = (unsigned int)b;
	if (b == 0x0F) {
		if (fetch(f, &in, 1, &b))
			return 1;
		in.op = 0x0F00 | (unsigned int)b;
	}
	op = (int)in.op;

	/* ALU r/m,r and r,r/m: 00-3B, the /digit in bits 5:3, direction in bit 1, size in bit 0. */
	if (op < 0x40 && (op & 7) < 4 && op != 0x0F00) {
		int alu_op = op >> 3;
		bool to_reg = (op & 2) != 0;
		uint64_t a;

		size = (op & 1) ? in.opsize : 1;
		if (decode_modrm(f, &in) || rm_get(f, &in, size, &a, false))
			return 1;
		src = reg_get(f, &in, in.reg, size);
		if (to_reg) {
			if (alu(f, alu_op, src, a, size, &r))
				return 1;
			if (alu_op != 7)
				reg_set(f, &in, in.reg, size, r);
		} else {
			if (alu(f, alu_op, a, src, size, &r))
				return 1;
			if (alu_op != 7 && rm_set(f, &in, size, r, false))
				return 1;
		}
		advance(f, &in);
		return 0;
	}
	/* ALU AL/eAX,imm: 04 05 0C 0D ... 3C 3D */
	if (op < 0x40 && ((op & 7) == 4 || (op & 7) == 5)) {
		size = (op & 1) ? in.opsize : 1;
		if (fetch_imm(f, &in, size))
			return 1;
		if (alu(f, op >> 3, reg_get(f, &in, 0, size), in.imm, size, &r))
			return 1;
		if ((op >> 3) != 7)
			reg_set(f, &in, 0, size, r);
		advance(f, &in);
		return 0;
	}

	switch (op) {
	case 0x80: case 0x81: case 0x83:	/* group 1: ALU r/m,imm */
		size = op == 0x80 ? 1 : in.opsize;
		if (decode_modrm(f, &in) || fetch_imm(f, &in, op == 0x81 ? size : 1))
			return 1;
		if (op == 0x83)
			in.imm = sext(in.imm, 1);
		if (rm_get(f, &in, size, &v, false) || alu(f, in.reg & 7, v, in.imm, size, &r))
			return 1;
		if ((in.reg & 7) != 7 && rm_set(f, &in, size, r, false))
			return 1;
		advance(f, &in);
		return 0;
	case 0x84: case 0x85:			/* TEST r/m,r */
		size = op == 0x84 ? 1 : in.opsize;
		if (decode_modrm(f, &in) || rm_get(f, &in, size, &v, false) ||
		    alu(f, 8, v, reg_get(f, &in, in.reg, size), size, &r))
			return 1;
		advance(f, &in);
		return 0;
	case 0x86: case 0x87:			/* XCHG r/m,r */
		size = op == 0x86 ? 1 : in.opsize;
		if (decode_modrm(f, &in) || rm_get(f, &in, size, &v, false))
			return 1;
		src = reg_get(f, &in, in.reg, size);
		reg_set(f, &in, in.reg, size, v);
		reg_set(f, &in, in.rm, size, src);
		advance(f, &in);
		return 0;
	case 0x88: case 0x89:			/* MOV r/m,r */
		size = op == 0x88 ? 1 : in.opsize;
		if (decode_modrm(f, &in) || rm_set(f, &in, size, reg_get(f, &in, in.reg, size), true))
			return 1;
		advance(f, &in);
		return 0;
	case 0x8A: case 0x8B:			/* MOV r,r/m */
		size = op == 0x8A ? 1 : in.opsize;
		if (decode_modrm(f, &in) || rm_get(f, &in, size, &v, true))
			return 1;
		reg_set(f, &in, in.reg, size, v);
		advance(f, &in);
		return 0;
	case 0x90:				/* NOP */
		advance(f, &in);
		return 0;
	case 0xA0: case 0xA1: case 0xA2: case 0xA3: {	/* MOV with a moffs */
		uint64_t lin;

		size = (op & 1) ? in.opsize : 1;
		if (fetch(f, &in, (size_t)in.adsize, &v))
			return 1;
		lin = fake_linear(f, in.seg >= 0 ? in.seg : NVMM_X64_SEG_DS, v, in.adsize);
		if (op >= 0xA2) {
			if (mem_store(f, lin, size, reg_get(f, &in, 0, size)))
				return 1;
		} else {
			if (mem_load(f, lin, size, &v, true))
				return 1;
			reg_set(f, &in, 0, size, v);
		}
		advance(f, &in);
		return 0;
	}
	case 0xA4: case 0xA5: case 0xAA: case 0xAB: case 0xAC: case 0xAD: {	/* MOVS STOS LODS */
		uint64_t lin;

		size = (op & 1) ? in.opsize : 1;
		if (in.rep && (f->gprs[NVMM_X64_GPR_RCX] & size_mask(in.adsize)) == 0) {
			advance(f, &in);
			return 0;
		}
		/* the string's memory side: MMIO here; RAM strings are not modelled */
		if (op == 0xAC || op == 0xAD || op == 0xA4 || op == 0xA5)
			lin = fake_linear(f, in.seg >= 0 ? in.seg : NVMM_X64_SEG_DS,
			    f->gprs[NVMM_X64_GPR_RSI], in.adsize);
		else
			lin = fake_linear(f, NVMM_X64_SEG_ES, f->gprs[NVMM_X64_GPR_RDI], in.adsize);
		return mem_load(f, lin, size, &v, false) ? 1 : fake_exit_invalid(f, FAKE_RAM_ALU);
	}
	case 0xA8: case 0xA9:			/* TEST AL/eAX,imm */
		size = op == 0xA8 ? 1 : in.opsize;
		if (fetch_imm(f, &in, size) || alu(f, 8, reg_get(f, &in, 0, size), in.imm, size, &r))
			return 1;
		advance(f, &in);
		return 0;
	case 0xC6: case 0xC7:			/* MOV r/m,imm */
		size = op == 0xC6 ? 1 : in.opsize;
		if (decode_modrm(f, &in) || fetch_imm(f, &in, size))
			return 1;
		if (rm_set(f, &in, size, in.imm, true))
			return 1;
		advance(f, &in);
		return 0;
	case 0xE4: case 0xE5: case 0xE6: case 0xE7:	/* IN/OUT imm8 */
		if (fetch(f, &in, 1, &v))
			return 1;
		return exit_io(f, &in, op < 0xE6, false, (op & 1) ? (in.opsize == 2 ? 2 : 4) : 1,
		    (uint16_t)v);
	case 0xEC: case 0xED: case 0xEE: case 0xEF:	/* IN/OUT DX */
		return exit_io(f, &in, op < 0xEE, false, (op & 1) ? (in.opsize == 2 ? 2 : 4) : 1,
		    (uint16_t)f->gprs[NVMM_X64_GPR_RDX]);
	case 0x6C: case 0x6D: case 0x6E: case 0x6F:	/* INS/OUTS */
		return exit_io(f, &in, op < 0x6E, true, (op & 1) ? (in.opsize == 2 ? 2 : 4) : 1,
		    (uint16_t)f->gprs[NVMM_X64_GPR_RDX]);
	case 0xEB:				/* JMP rel8 */
	case 0xE9:				/* JMP rel16/32 */
		if (fetch(f, &in, op == 0xEB ? 1 : (in.opsize == 2 ? 2 : 4), &v))
			return 1;
		f->gprs[NVMM_X64_GPR_RIP] = (npc(f, &in) +
		    sext(v, op == 0xEB ? 1 : (in.opsize == 2 ? 2 : 4))) & size_mask(f->mode);
		return 0;
	case 0xF4:				/* HLT */
		advance(f, &in);
		memset(&f->exit->u, 0, sizeof(f->exit->u));
		f->exit->reason = NVMM_VCPU_EXIT_HALTED;
		return 1;
	case 0xF6: case 0xF7:			/* group 3: TEST r/m,imm only */
		size = op == 0xF6 ? 1 : in.opsize;
		if (decode_modrm(f, &in))
			return 1;
		if ((in.reg & 7) != 0)
			return fake_exit_invalid(f, (uint64_t)op);
		if (fetch_imm(f, &in, size) || rm_get(f, &in, size, &v, false) ||
		    alu(f, 8, v, in.imm, size, &r))
			return 1;
		advance(f, &in);
		return 0;
	case 0xFE: case 0xFF: {			/* group 4/5: INC, DEC only */
		uint64_t cf;

		size = op == 0xFE ? 1 : in.opsize;
		if (decode_modrm(f, &in))
			return 1;
		if ((in.reg & 7) > 1)
			return fake_exit_invalid(f, (uint64_t)op);
		if (rm_get(f, &in, size, &v, false))
			return 1;
		cf = f->gprs[NVMM_X64_GPR_RFLAGS] & FLAG_CF;	/* INC and DEC keep CF */
		if (alu(f, (in.reg & 7) ? 5 : 0, v, 1, size, &r) || rm_set(f, &in, size, r, false))
			return 1;
		f->gprs[NVMM_X64_GPR_RFLAGS] = (f->gprs[NVMM_X64_GPR_RFLAGS] & ~FLAG_CF) | cf;
		advance(f, &in);
		return 0;
	}
	case 0x0F30:				/* WRMSR */
		memset(&f->exit->u, 0, sizeof(f->exit->u));
		f->exit->reason = NVMM_VCPU_EXIT_WRMSR;
		f->exit->u.wrmsr.msr = (uint32_t)f->gprs[NVMM_X64_GPR_RCX];
		f->exit->u.wrmsr.val = (f->gprs[NVMM_X64_GPR_RDX] << 32) |
		    (f->gprs[NVMM_X64_GPR_RAX] & 0xFFFFFFFFULL);
		f->exit->u.wrmsr.npc = npc(f, &in);
		return 1;
	case 0x0F32:				/* RDMSR */
		memset(&f->exit->u, 0, sizeof(f->exit->u));
		f->exit->reason = NVMM_VCPU_EXIT_RDMSR;
		f->exit->u.rdmsr.msr = (uint32_t)f->gprs[NVMM_X64_GPR_RCX];
		f->exit->u.rdmsr.npc = npc(f, &in);
		return 1;
	case 0x0FA2:				/* CPUID */
		return exec_cpuid(f, &in);
	case 0x0FB6: case 0x0FB7: case 0x0FBE: case 0x0FBF:	/* MOVZX, MOVSX */
		size = (op & 1) ? 2 : 1;
		if (decode_modrm(f, &in) || rm_get(f, &in, size, &v, true))
			return 1;
		reg_set(f, &in, in.reg, in.opsize, op >= 0x0FBE ? sext(v, size) : v);
		advance(f, &in);
		return 0;
	}
	if (op >= 0xB0 && op <= 0xBF) {		/* MOV r,imm (imm64 with REX.W) */
		int reg = (op & 7) | ((in.rex & 1) ? 8 : 0);

		size = op < 0xB8 ? 1 : in.opsize;
		if (fetch(f, &in, (size_t)size, &v))
			return 1;
		reg_set(f, &in, reg, size, v);
		advance(f, &in);
		return 0;
	}
	if ((op >= 0x70 && op <= 0x7F) || (op >= 0x0F80 && op <= 0x0F8F)) {	/* Jcc */
		int n = op < 0x80 ? 1 : (in.opsize == 2 ? 2 : 4);

		if (fetch(f, &in, (size_t)n, &v))
			return 1;
		if (condition(f->gprs[NVMM_X64_GPR_RFLAGS], (unsigned int)op & 0xF))
			f->gprs[NVMM_X64_GPR_RIP] = (npc(f, &in) + sext(v, n)) & size_mask(f->mode);
		else
			advance(f, &in);
		return 0;
	}
	return fake_exit_invalid(f, (uint64_t)op);
}

void
nvmm_hosted_cpu_run(struct nvmm_machine *mach, struct nvmm_hosted_vcpu *vc,
    struct nvmm_vcpu_exit *exit, unsigned long budget)
{
	struct nvmm_x64_state *s = &vc->state;
	uint64_t saved[NVMM_X64_NGPR];
	struct fake f = { mach, vc, exit, s->gprs, 0 };

	if (s->msrs[NVMM_X64_MSR_EFER] & EFER_LMA)
		f.mode = s->segs[NVMM_X64_SEG_CS].attrib.l ? 8 :
		    (s->segs[NVMM_X64_SEG_CS].attrib.def ? 4 : 2);
	else if (s->crs[NVMM_X64_CR_CR0] & CR0_PE)
		f.mode = s->segs[NVMM_X64_SEG_CS].attrib.def ? 4 : 2;
	else
		f.mode = 2;

	exit->reason = NVMM_VCPU_EXIT_NONE;
	while (budget-- > 0) {
		/* an instruction that exits leaves the registers as they were before it */
		memcpy(saved, s->gprs, sizeof(saved));
		if (step(&f)) {
			if (exit->reason == NVMM_VCPU_EXIT_MEMORY ||
			    exit->reason == NVMM_VCPU_EXIT_INVALID)
				memcpy(s->gprs, saved, sizeof(saved));
			return;
		}
		vc->insns++;
		if (os_return_needed())
			return;
	}
}
