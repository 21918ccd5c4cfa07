package train

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStepMLP800 times one training step of Hinton's 784-800-800-10 ReLU
// student MLP at batch 128: forward, cross-entropy, backward and an Adam update.
func BenchmarkTrainStepMLP800(b *testing.B) {
	const batch = 128
	g, err := Compile(mlpModel(b, 800, 800), CompileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	g.Reinit(1)
	opt, err := NewOptimizer(g.Params(), OptimizerConfig{Name: "adam", LR: 1e-3})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	x := NewTensor([]int{batch, 784}, genData(r, positive, batch*784))
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = r.IntN(10)
	}
	out := g.Outputs()[0]
	in := map[string]*Tensor{"input": x}
	step := func() {
		tape, err := g.Forward(in, true)
		if err != nil {
			b.Fatal(err)
		}
		_, grad := CrossEntropy(tape.Output(out), labels)
		opt.ZeroGrad()
		if err := tape.Backward(map[string]*Tensor{out: grad}); err != nil {
			b.Fatal(err)
		}
		opt.Step()
		tape.Release()
	}
	step() // warm the buffer pool
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
	// multiply-adds: forward 784·800 + 800·800 + 800·10 per sample; backward twice that,
	// less the input gradient of the first layer.
	fwd := 2.0 * (784*800 + 800*800 + 800*10)
	flops := fwd*3 - 2*784*800
	b.ReportMetric(flops*batch*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkTrainStepFixtures times a training step (forward, cross-entropy, backward,
// SGD) of each fixture at batch 64.
func BenchmarkTrainStepFixtures(b *testing.B) {
	for _, f := range fixtures {
		b.Run(f.name, func(b *testing.B) {
			g, err := Compile(loadFixture(b, f.name), CompileOptions{})
			if err != nil {
				b.Fatal(err)
			}
			opt, _ := NewOptimizer(g.Params(), OptimizerConfig{Name: "sgd", LR: 0.01, Momentum: 0.9})
			const batch = 64
			in := fixtureInput(1, batch, f.shape)
			labels := make([]int, batch)
			for i := range labels {
				labels[i] = i % 10
			}
			out := g.Outputs()[0]
			step := func() {
				tape, err := g.Forward(in, true)
				if err != nil {
					b.Fatal(err)
				}
				_, grad := CrossEntropy(tape.Output(out), labels)
				opt.ZeroGrad()
				if err := tape.Backward(map[string]*Tensor{out: grad}); err != nil {
					b.Fatal(err)
				}
				opt.Step()
				tape.Release()
			}
			step()
			b.ResetTimer()
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
