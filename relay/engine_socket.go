package relay

import (
	"errors"

	"github.com/softnet-go/softnet/netq"
)

// newSocketEngine returns the engine that splices with package socket.
func newSocketEngine(m Mode, workers *netq.Group) (engine, error) {
	return nil, errors.New("splicing modes need package socket, which is not built yet; use the iocopy or copy baseline")
}
