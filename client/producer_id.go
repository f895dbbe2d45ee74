package client

import (
	"context"
	"fmt"

	"github.com/ringmq/ringmq/proto"
)

// InitProducer asks for an idempotent producer id: a new one (ProducerID
// proto.NoProducerID) or the next epoch of one the server issued. A
// refusal in the response body is returned as an error too.
func (c *Conn) InitProducer(ctx context.Context, req *proto.InitProducerRequest) (*proto.InitProducerResponse, error) {
	resp, err := roundTrip[proto.InitProducerResponse](ctx, c, req)
	if err != nil {
		return nil, err
	}
	if resp.Error != proto.None {
		return resp, fmt.Errorf("client: %v: %w", proto.APIInitProducer, resp.Error)
	}
	return resp, nil
}
