package images

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PauseRef is the reference under which the node agent imports the pause
// image and which it names as the sandbox image.
const PauseRef = "lotse.local/pause:1"

// Linux x86-64 ABI numbers used by the pause program.
const (
	sysRtSigaction = 13
	sysPause       = 34
	sysExitGroup   = 231

	sigINT  = 2
	sigTERM = 15
	sigCHLD = 17

	sigIGN = 1 // SIG_IGN handler value

	// saRestorer says sa_restorer is valid. On x86-64 the kernel returns from
	// a handler through sa_restorer, and delivering a signal to a handler
	// without it faults.
	saRestorer = 0x04000000

	sigsetSize = 8 // the kernel's sigset_t: one bit per signal 1..64
)

// pauseProgram is the sandbox's PID 1: it exits 0 on SIGTERM or SIGINT,
// lets the kernel reap any children (SIGCHLD ignored), and otherwise sleeps
// forever.
func pauseProgram() *program {
	p := newProgram()
	p.label("_start")

	// For each signal: rt_sigaction(sig, act, NULL, sizeof(sigset_t)), and
	// exit 1 if the kernel refuses, since a pause that cannot be stopped
	// cleanly is worse than none.
	install := func(sig uint32, action string) {
		p.movImm(eax, sysRtSigaction)
		p.movImm(edi, sig)
		p.movAddr(esi, action) // const struct sigaction *act
		p.zero(edx)            // struct sigaction *oldact = NULL
		p.movImm(r10d, sigsetSize)
		p.syscall()
		p.testEAX()
		p.jnz("fail")
	}
	install(sigTERM, "exitAction")
	install(sigINT, "exitAction")
	install(sigCHLD, "ignoreAction")

	// pause() returns only after a handled signal; ignored ones never wake
	// it, and the handled ones exit. Loop anyway in case of spurious returns.
	p.label("sleep")
	p.movImm(eax, sysPause)
	p.syscall()
	p.jmp("sleep")

	// Signal handler for SIGTERM and SIGINT: exit_group(0). It never returns,
	// so the restorer (required by the kernel) can simply point here too.
	p.label("exit")
	p.movImm(eax, sysExitGroup)
	p.zero(edi)
	p.syscall()

	p.label("fail")
	p.movImm(eax, sysExitGroup)
	p.movImm(edi, 1)
	p.syscall()

	// struct kernel_sigaction { handler, flags, restorer, mask } as read by
	// rt_sigaction. The segment is read-only, which is all the kernel needs.
	p.align(8)
	p.label("exitAction")
	p.quadAddr("exit") // sa_handler
	p.quad(saRestorer) // sa_flags
	p.quadAddr("exit") // sa_restorer
	p.quad(0)          // sa_mask: block nothing extra
	p.label("ignoreAction")
	p.quad(sigIGN) // sa_handler = SIG_IGN
	p.quad(0)      // sa_flags
	p.quad(0)      // sa_restorer
	p.quad(0)      // sa_mask
	return p
}

var pauseAMD64 = sync.OnceValue(func() []byte {
	b, err := linkELF(pauseProgram(), "_start")
	if err != nil {
		panic(err) // the program text is fixed, so this is a bug caught by tests
	}
	return b
})

// PauseBinary returns the pause executable for the architecture lotse was
// built for, or nil if there is none for it yet (only amd64 today).
func PauseBinary() []byte { return pauseBinary(runtime.GOARCH) }

func pauseBinary(arch string) []byte {
	if arch != "amd64" {
		return nil
	}
	return bytes.Clone(pauseAMD64())
}

// Pause returns the sandbox image: /pause as its only file and entrypoint.
// Its digest depends only on the bytes of the pause program.
func Pause() (v1.Image, error) { return pauseImage(runtime.GOARCH) }

func pauseImage(arch string) (v1.Image, error) {
	bin := pauseBinary(arch)
	if bin == nil {
		return nil, fmt.Errorf("images: no pause binary for architecture %q yet", arch)
	}
	return build(map[string]File{
		"/pause": {Mode: 0o755, Data: bin},
	}, v1.Config{Entrypoint: []string{"/pause"}}, arch)
}
