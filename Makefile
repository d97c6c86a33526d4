# vizlab — the two commands a fresh machine needs are `make demo` and `make test` (see README).
SWIFT_RELEASE := swift build -c release
SWIFT_TEST    := swift test -c release -Xswiftc -enable-testing --disable-swift-testing
VIZLAB        := .build/release/vizlab
export VIZLAB_HOME ?= $(HOME)/.cache/vizlab
# OpenBLAS' AVX2 + FMA kernels (it mistakes this project's Zen 3 VMs for a Prescott): the vizlab binary sets this
# itself and re-executes; exported here so the test processes, which load OpenBLAS directly, use the same kernels.
export OPENBLAS_CORETYPE ?= Haswell

.PHONY: setup parity-fixtures build test demo bench clean dataset gallery-full fashion datasets

setup:            ## install system libraries, fetch the weights and the sample photos (idempotent)
	bash scripts/setup

dataset: setup    ## the ~800-image sample corpus for vizlab index (Debian gcompris-qt-data + tuxpaint-stamps-default)
	bash scripts/dataset

fashion: setup    ## Fashion-MNIST (Debian dataset-fashion-mnist) as PNG class folders: full and a 2,000/1,000/1,000 split
	bash scripts/make-fashion

datasets: fashion  ## the training sets in $$VIZLAB_HOME/data: make fashion + tuxpaint-6 (266 Tux Paint stamps, 6 classes, 60/20/20)
	bash scripts/make-folder-set

build: setup      ## release build (-target-cpu haswell is set in Package.swift)
	$(SWIFT_RELEASE)

parity-fixtures: setup  ## framework-parity fixtures made by PyTorch itself, once per machine ($$VIZLAB_HOME/parity)
	bash scripts/parity-fixtures

test: setup parity-fixtures  ## the whole test suite, in release (numeric code is 10-100x slower in debug)
	$(SWIFT_TEST)

demo: build dataset fashion  ## list the models (fetch verifies Lite1), classify the sample photos (Lite0/1/2), render a Lite2 channel, fool the model three times, index the corpus, similar images / duplicates / inversion, benchmark, render the HTML gallery
	@echo "== vizlab models: the built-in architectures and which weights are installed; fetch checks (or downloads) official weights"
	$(VIZLAB) models
	$(VIZLAB) models fetch lite1
	@echo "== vizlab classify (sample photos in $(VIZLAB_HOME)/samples), then the same photo with Lite1 and Lite2"
	$(VIZLAB) classify --top 3 $(VIZLAB_HOME)/samples/*.png $(VIZLAB_HOME)/samples/*.jpg
	$(VIZLAB) classify --top 3 --model lite1 $(VIZLAB_HOME)/samples/chicky_512.png
	$(VIZLAB) classify --top 3 --model lite2 $(VIZLAB_HOME)/samples/chicky_512.png
	@echo "== a Lite2 channel by its layer name, 128 steps at its 260² input"
	$(VIZLAB) channel blocks.14:7 --model lite2 --steps 128 --seed 1 --out out/demo/lite2
	@echo "== vizlab attack: the Pekinese photo made a cat at ε = 4/255 (then re-read from disk by vizlab classify), chelsea made a goldfish, coffee pushed off espresso by DeepFool"
	$(VIZLAB) attack $(VIZLAB_HOME)/samples/chicky_512.png --target cat --eps 4 --seed 1 --out out/demo/attack
	$(VIZLAB) classify --top 3 out/demo/attack/chicky_512.adv.png
	$(VIZLAB) attack $(VIZLAB_HOME)/samples/chelsea.png --target goldfish --eps 4 --seed 1 --out out/demo/attack
	$(VIZLAB) attack $(VIZLAB_HOME)/samples/coffee.png --attack deepfool --seed 1 --out out/demo/attack
	@echo "== vizlab index: the sample corpus (only new or changed files on a rerun), then top images of three units"
	$(VIZLAB) index $(VIZLAB_HOME)/dataset --db out/demo/examples.sqlite
	$(VIZLAB) top logits:282 --k 8 --db out/demo/examples.sqlite --out out/demo/top/tiger_cat.png
	$(VIZLAB) top logits:483 --k 8 --db out/demo/examples.sqlite --out out/demo/top/castle.png
	$(VIZLAB) top blocks.5:10 --k 8 --patches --db out/demo/examples.sqlite --out out/demo/top/blocks5_10_patches.png
	@echo "== vizlab similar: two photos' nearest images in the corpus (HNSW graph built beside the index, then exact), near-duplicate groups, a photo's embedding inverted"
	$(VIZLAB) similar $(VIZLAB_HOME)/samples/chelsea.png $(VIZLAB_HOME)/samples/coffee.png --k 8 --db out/demo/examples.sqlite --out out/demo/similar
	$(VIZLAB) similar $(VIZLAB_HOME)/samples/chelsea.png --k 8 --exact --db out/demo/examples.sqlite --out out/demo/similar/exact
	$(VIZLAB) duplicates --db out/demo/examples.sqlite --out out/demo/duplicates
	$(VIZLAB) invert $(VIZLAB_HOME)/samples/chelsea.png --steps 256 --seed 1 --out out/demo/invert
	@echo "== vizlab train: a new head on Lite0's features for Fashion-MNIST's 10 classes (2,000 train / 1,000 validation / 1,000 test at 112²), then the trained model classified and its ideal sneaker"
	$(VIZLAB) train $(VIZLAB_HOME)/data/fashion-small --mode features --size 112 --epochs 30 --lr 1e-3 --seed 1 --out out/demo/train
	$(VIZLAB) classify --top 3 --model out/demo/train/model.vizlab $(VIZLAB_HOME)/data/fashion-small/test/sneaker/00036.png
	$(VIZLAB) ideal --model out/demo/train/model.vizlab --class sneaker --class "ankle_boot" --steps 128 --seed 1 --out out/demo/train/ideal
	@echo "== vizlab bench"
	$(VIZLAB) bench --runs 10
	@echo "== vizlab gallery: 16 channels of 4 layers, 8 classes, the 3 attacks (renders cached: a rerun renders nothing)"
	$(VIZLAB) gallery --out gallery/demo $(DEMO_GALLERY) --dataset out/demo/examples.sqlite --attacks out/demo/attack --seed 1
	@echo "== open file://$(CURDIR)/gallery/demo/index.html"

# The demo's gallery: short renders so `make demo` stays within minutes (the gallery's own default is 256 steps).
DEMO_GALLERY := --layers blocks.2,blocks.5,blocks.9,blocks.14 --channels 16 --steps 128

gallery-full: build dataset  ## every channel of every block output and the head, 256 steps (hours: see README)
	$(VIZLAB) index $(VIZLAB_HOME)/dataset --db out/demo/examples.sqlite
	$(VIZLAB) gallery --out gallery/full --layers $(FULL_LAYERS) --channels all --steps 256 --dataset out/demo/examples.sqlite --seed 1 \
		$(if $(wildcard out/demo/attack/*.json),--attacks out/demo/attack)

FULL_LAYERS := $(shell seq -s, -f 'blocks.%g' 0 15),head

bench: build
	$(VIZLAB) bench

clean:
	rm -rf .build
