package relay

import "errors"

// newSocketEngine returns the engine that splices with package socket.
func newSocketEngine(m Mode) (engine, error) {
	return nil, errors.New("splicing modes need package socket, which is not built yet; use the iocopy or copy baseline")
}
