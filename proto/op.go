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

	// The network server again.
	OpProvide Op = 18 // lend buffer Buf for the output of waits submitted with FlagSelect; see FlagSelect

	opCount = 19
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
	waits  bool
}{
	OpNop:         {"nop", ServerAny, false},
	OpCancel:      {"cancel", ServerAny, false},
	OpListen:      {"listen", ServerNet, false},
	OpAccept:      {"accept", ServerNet, true},
	OpConnect:     {"connect", ServerNet, true},
	OpSend:        {"send", ServerNet, false},
	OpRecv:        {"recv", ServerNet, true},
	OpShutdown:    {"shutdown", ServerNet, false},
	OpClose:       {"close", ServerAny, false},
	OpSetsockopt:  {"setsockopt", ServerNet, false},
	OpGetsockname: {"getsockname", ServerNet, false},
	OpGetpeername: {"getpeername", ServerNet, false},
	OpOpen:        {"open", ServerDisk, false},
	OpRead:        {"read", ServerDisk, false},
	OpWrite:       {"write", ServerDisk, false},
	OpFsync:       {"fsync", ServerDisk, false},
	OpStat:        {"stat", ServerDisk, false},
	OpReaddir:     {"readdir", ServerDisk, false},
	OpProvide:     {"provide", ServerNet, false},
}

// Valid reports whether op is a known opcode.
func (op Op) Valid() bool { return op < opCount }

// Waits reports whether op is a wait: an operation that may stay in
// flight for as long as a peer on the network likes (OpAccept, OpConnect,
// OpRecv). Waits are budgeted apart from calls, so that idle connections
// cannot use up what other operations need:
//
//   - A call (every other operation) completes promptly. The app keeps at
//     most as many calls in flight as its completion ring has slots, so
//     that a call's completion always finds room.
//   - A wait holds no call slot. The server counts the app's waits against
//     the app's own limit (ENOBUFS past it) and holds a wait's completion
//     until the completion ring has room, after the calls' completions:
//     it may come late, never lost, and never in a call's way.
//
// A wait holds no data buffer either when it is submitted with FlagSelect.
func (op Op) Waits() bool { return op.Valid() && opInfo[op].waits }

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
