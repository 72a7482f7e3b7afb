package proto

import "fmt"

// Op is a submission's opcode: the system call it asks for.
type Op uint8

// Opcodes. Their numbers are ABI: never renumber, only append.
const (
	// Both servers.
	OpNop    Op = 0 // no operation; completes with 0. For wake-up and latency tests.
	OpCancel Op = 1 // cancel the request whose user_data is Args[0]

	// The network server (netproc).
	OpListen      Op = 2  // listen on the address in the buffer; result: a socket handle
	OpAccept      Op = 3  // accept on listener Handle; result: a socket handle
	OpConnect     Op = 4  // connect to the address in the buffer; result: a socket handle
	OpSend        Op = 5  // send Len bytes of the buffer on Handle; result: bytes sent
	OpRecv        Op = 6  // receive up to Len bytes into the buffer; result: bytes (0 at end of stream)
	OpShutdown    Op = 7  // shut down Handle: Args[0] is ShutRead, ShutWrite or ShutBoth
	OpClose       Op = 8  // close Handle (a socket, or a file on the disk server)
	OpSetsockopt  Op = 9  // set option Args[0] to Args[1] on Handle
	OpGetsockname Op = 10 // write Handle's local address into the buffer
	OpGetpeername Op = 11 // write Handle's peer address into the buffer

	// The disk server (diskproc).
	OpOpen    Op = 12 // open the path in the buffer with OpenFlags Args[0], mode Args[1]; result: a file handle
	OpRead    Op = 13 // read up to Len bytes at Offset into the buffer; result: bytes (0 at end of file)
	OpWrite   Op = 14 // write Len bytes of the buffer at Offset; result: bytes written
	OpFsync   Op = 15 // flush Handle to stable storage
	OpStat    Op = 16 // write Handle's metadata into the buffer
	OpReaddir Op = 17 // write directory entries of Handle into the buffer, from cookie Offset

	opCount = 18
)

// ShutRead, ShutWrite and ShutBoth are OpShutdown's Args[0].
const (
	ShutRead  = 0
	ShutWrite = 1
	ShutBoth  = 2
)

// Server says which server an opcode belongs to.
type Server uint8

const (
	ServerAny  Server = iota // served by both
	ServerNet                // netproc
	ServerDisk               // diskproc
)

var opInfo = [opCount]struct {
	name   string
	server Server
}{
	OpNop:         {"nop", ServerAny},
	OpCancel:      {"cancel", ServerAny},
	OpListen:      {"listen", ServerNet},
	OpAccept:      {"accept", ServerNet},
	OpConnect:     {"connect", ServerNet},
	OpSend:        {"send", ServerNet},
	OpRecv:        {"recv", ServerNet},
	OpShutdown:    {"shutdown", ServerNet},
	OpClose:       {"close", ServerAny},
	OpSetsockopt:  {"setsockopt", ServerNet},
	OpGetsockname: {"getsockname", ServerNet},
	OpGetpeername: {"getpeername", ServerNet},
	OpOpen:        {"open", ServerDisk},
	OpRead:        {"read", ServerDisk},
	OpWrite:       {"write", ServerDisk},
	OpFsync:       {"fsync", ServerDisk},
	OpStat:        {"stat", ServerDisk},
	OpReaddir:     {"readdir", ServerDisk},
}

// Valid reports whether op is a known opcode.
func (op Op) Valid() bool { return op < opCount }

// Server is the server that serves op.
func (op Op) Server() Server {
	if !op.Valid() {
		return ServerAny
	}
	return opInfo[op].server
}

// ServedBy reports whether server s accepts op.
func (op Op) ServedBy(s Server) bool {
	return op.Valid() && (opInfo[op].server == ServerAny || opInfo[op].server == s)
}

func (op Op) String() string {
	if !op.Valid() {
		return fmt.Sprintf("op(%d)", uint8(op))
	}
	return opInfo[op].name
}
