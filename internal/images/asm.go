package images

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// This file holds just enough of an x86-64 assembler and ELF writer to build
// the pause program: a handful of fixed-size instruction encodings, labels,
// and fixups resolved once the load address is known. Every instruction has a
// fixed length, so label offsets are final as soon as they are defined and a
// single patch pass at link time suffices.

// reg is an x86-64 register number as used in instruction encodings; the
// 32-bit names are used because writing a 32-bit register zero-extends into
// the full 64-bit register, which gives shorter encodings.
type reg uint8

const (
	eax  reg = 0
	edx  reg = 2
	esi  reg = 6
	edi  reg = 7
	r10d reg = 10 // fourth syscall argument; needs a REX prefix
)

type fixupKind int

const (
	abs32 fixupKind = iota // 4-byte absolute virtual address of the label
	abs64                  // 8-byte absolute virtual address of the label
	rel8                   // 1-byte displacement from the byte after it to the label
)

type fixup struct {
	at    int // offset of the bytes to patch
	label string
	kind  fixupKind
}

// program is machine code plus data under construction.
type program struct {
	buf    []byte
	labels map[string]int
	fixups []fixup
}

func newProgram() *program {
	return &program{labels: map[string]int{}}
}

func (p *program) label(name string) {
	if _, dup := p.labels[name]; dup {
		panic("images: duplicate label " + name) // a bug in the program text
	}
	p.labels[name] = len(p.buf)
}

func (p *program) emit(b ...byte) { p.buf = append(p.buf, b...) }

func (p *program) imm32(v uint32) { p.buf = binary.LittleEndian.AppendUint32(p.buf, v) }

func (p *program) ref(label string, kind fixupKind, size int) {
	p.fixups = append(p.fixups, fixup{at: len(p.buf), label: label, kind: kind})
	p.buf = append(p.buf, make([]byte, size)...)
}

// movOpcode emits "mov r32, imm32" up to the immediate: B8+r, with REX.B
// (0x41) selecting r8d-r15d.
func (p *program) movOpcode(r reg) {
	if r >= 8 {
		p.emit(0x41)
	}
	p.emit(0xB8 + byte(r&7))
}

// movImm is "mov r32, imm32".
func (p *program) movImm(r reg, v uint32) {
	p.movOpcode(r)
	p.imm32(v)
}

// movAddr is "mov r32, imm32" with the address of label; the image is
// loaded below 4 GiB, so the zero-extended 32-bit address is exact.
func (p *program) movAddr(r reg, label string) {
	p.movOpcode(r)
	p.ref(label, abs32, 4)
}

// zero is "xor r32, r32" (31 /r, ModRM 11 reg reg), the idiomatic way to
// clear a register.
func (p *program) zero(r reg) {
	if r >= 8 {
		panic("images: zero supports only eax..edi")
	}
	p.emit(0x31, 0xC0|byte(r)<<3|byte(r))
}

// testEAX is "test eax, eax": sets ZF when the last syscall returned 0.
func (p *program) testEAX() { p.emit(0x85, 0xC0) }

// syscall is "syscall" (0F 05): number in rax, arguments in rdi, rsi, rdx,
// r10, r8, r9; result (or -errno) in rax.
func (p *program) syscall() { p.emit(0x0F, 0x05) }

// jnz is "jnz rel8" (75 cb).
func (p *program) jnz(label string) {
	p.emit(0x75)
	p.ref(label, rel8, 1)
}

// jmp is "jmp rel8" (EB cb).
func (p *program) jmp(label string) {
	p.emit(0xEB)
	p.ref(label, rel8, 1)
}

// align pads with zero bytes to a multiple of n; only used before data.
func (p *program) align(n int) {
	for len(p.buf)%n != 0 {
		p.emit(0)
	}
}

// quad emits a little-endian 64-bit data word.
func (p *program) quad(v uint64) { p.buf = binary.LittleEndian.AppendUint64(p.buf, v) }

// quadAddr emits the 64-bit absolute address of label as data.
func (p *program) quadAddr(label string) { p.ref(label, abs64, 8) }

// link resolves labels for a program whose first byte is loaded at base.
func (p *program) link(base uint64) ([]byte, error) {
	out := bytes.Clone(p.buf)
	for _, f := range p.fixups {
		off, ok := p.labels[f.label]
		if !ok {
			return nil, fmt.Errorf("images: undefined label %q", f.label)
		}
		switch f.kind {
		case abs32:
			addr := base + uint64(off)
			if addr > 0xFFFFFFFF {
				return nil, fmt.Errorf("images: address of %q does not fit in 32 bits", f.label)
			}
			binary.LittleEndian.PutUint32(out[f.at:], uint32(addr))
		case abs64:
			binary.LittleEndian.PutUint64(out[f.at:], base+uint64(off))
		case rel8:
			d := off - (f.at + 1)
			if d < -128 || d > 127 {
				return nil, fmt.Errorf("images: jump to %q out of rel8 range (%d)", f.label, d)
			}
			out[f.at] = byte(int8(d))
		}
	}
	return out, nil
}

const (
	// loadAddr is where the single segment (the whole file) is mapped: the
	// traditional base for non-PIE x86-64 executables, above mmap_min_addr.
	loadAddr   = 0x400000
	elfHdrSize = 64 // sizeof(Elf64_Ehdr)
	phdrSize   = 56 // sizeof(Elf64_Phdr)
	codeOffset = elfHdrSize + phdrSize
)

// linkELF returns a static x86-64 executable whose only segment maps the
// whole file read+execute at loadAddr, with the program right after the
// headers and execution starting at the program's label entry.
func linkELF(p *program, entry string) ([]byte, error) {
	codeAddr := uint64(loadAddr + codeOffset)
	code, err := p.link(codeAddr)
	if err != nil {
		return nil, err
	}
	entryOff, ok := p.labels[entry]
	if !ok {
		return nil, fmt.Errorf("images: undefined entry label %q", entry)
	}
	size := uint64(codeOffset + len(code))

	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)

	hdr := elf.Header64{
		Ident:     ident,
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     codeAddr + uint64(entryOff),
		Phoff:     elfHdrSize,
		Ehsize:    elfHdrSize,
		Phentsize: phdrSize,
		Phnum:     1,
		// No section headers: the kernel loads by program headers only.
	}
	prog := elf.Prog64{
		Type:   uint32(elf.PT_LOAD),
		Flags:  uint32(elf.PF_R | elf.PF_X),
		Off:    0,
		Vaddr:  loadAddr,
		Paddr:  loadAddr,
		Filesz: size,
		Memsz:  size,
		Align:  0x1000,
	}

	var out bytes.Buffer
	// Writes to a bytes.Buffer cannot fail.
	_ = binary.Write(&out, binary.LittleEndian, &hdr)
	_ = binary.Write(&out, binary.LittleEndian, &prog)
	if out.Len() != codeOffset {
		return nil, fmt.Errorf("images: ELF headers are %d bytes, want %d", out.Len(), codeOffset)
	}
	out.Write(code)
	return out.Bytes(), nil
}
