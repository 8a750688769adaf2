package repartition

import (
	"context"

	"github.com/seqchat/seqchat/internal/control"
	"github.com/seqchat/seqchat/internal/generation"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// readControl reads the control record (control.Read: without one, the
// deployment's generation 1).
func (r *Tool) readControl(ctx context.Context) (g *imv1.Generations, stored bool, err error) {
	return control.Read(ctx, r.client, r.cfg.ControlTopic, generation.Topics(r.cfg.Topics, generation.First).Raw)
}

// publish writes the control record.
func (r *Tool) publish(g *imv1.Generations) error {
	return control.Publish(r.cfg.Kafka, r.cfg.ControlTopic, g)
}
