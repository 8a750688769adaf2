package control

import "github.com/seqchat/seqchat/schemas/imv1"

// Serve is what a sequencer, fanout or history service runs besides its
// follower: with pin > 0 (its -generation flag) the component of that
// generation alone, built by in.New, else in, an instance per generation.
func Serve(pin uint32, in *Instances) (Component, error) {
	if pin > 0 {
		return in.New(&imv1.Generation{Id: pin}, in.Registerer)
	}
	return in, nil
}
