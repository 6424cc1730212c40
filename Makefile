# make all       : set up .venv, fetch the data where there is no local copy, build the NLI base and the detector where
#                  missing, then execute every notebook top to bottom in place (VF_PROFILE=cpu by default)
# make data      : without a local data folder (../shared/data or $VF_DATA_DIR), fetch each set from its public origin
#                  into data/raw/, checked against vf/data_checksums.json
# make test      : set up .venv, then run the unit tests and the notebooks' smoke executions
# make nli-base  : the NLI base (MiniLM after the NLI stage), models/nli_base, restored from its kept compact weights
# make detector  : the shipped detector, models/detector (from the full NLI stage, built first where missing)
# make nli-full  : the full NLI stage (every pair, Climate-FEVER too), models/nli_full: the detector's base, restored
#                  from results/nli_full/kept/ (python -m experiments.nli_base --full --rebuild trains it: hours)
PYTHON ?= python3
VENV := .venv
NOTEBOOKS := 0_nli_base.ipynb 1_explore_data.ipynb 2_ft_fib.ipynb 3_ft_usb_then_fib.ipynb 4_general_detector.ipynb 5_study.ipynb
NLI_BASE := models/nli_base/model.safetensors
DETECTOR := models/detector/model.safetensors

# raw data: ../shared/data when it exists; otherwise each set is fetched from its public origin (make data)
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
export VF_DATA_DIR ?= $(SHARED_DATA)
endif

# appends "<step>,<profile>,<seconds>,<finished>" to results/notebook_times.csv
define timed
	start=$$(date +%s); $(1) || exit 1; secs=$$(( $$(date +%s) - start )); echo "   $(2) took $$secs s"; \
	mkdir -p results; [ -f results/notebook_times.csv ] || echo "notebook,profile,seconds,finished" > results/notebook_times.csv; \
	echo "$(2),$${VF_PROFILE:-cpu},$$secs,$$(date -u +%FT%TZ)" >> results/notebook_times.csv
endef

.PHONY: all data notebooks test clean nli-base nli-full detector
all: data notebooks

data: $(VENV)/installed
	@if [ -n "$$VF_DATA_DIR" ]; then echo "== data: local copy in $$VF_DATA_DIR"; \
	else echo "== data: fetching into data/raw/"; $(VENV)/bin/python -m vf.fetch; fi

$(VENV)/installed: requirements.txt
	@echo "== venv: $(VENV) from requirements.txt"
	@$(call timed,$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet -r requirements.txt,venv)
	touch $@

nli-base: $(NLI_BASE)
$(NLI_BASE): | $(VENV)/installed data
	@echo "== NLI base (profile $${VF_PROFILE:-cpu})"
	@$(call timed,$(VENV)/bin/python -m experiments.nli_base,nli_base)

nli-full: models/nli_full/model.safetensors
models/nli_full/model.safetensors: | $(VENV)/installed data
	@echo "== full NLI stage (profile $${VF_PROFILE:-cpu})"
	@$(call timed,$(VENV)/bin/python -m experiments.nli_base --full,nli_full)

detector: $(DETECTOR)
$(DETECTOR): | $(NLI_BASE) models/nli_full/model.safetensors
	@echo "== detector (profile $${VF_PROFILE:-cpu})"
	@$(call timed,$(VENV)/bin/python -m experiments.detector,detector)

notebooks: $(VENV)/installed $(NLI_BASE) $(DETECTOR)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb (profile $${VF_PROFILE:-cpu})"; \
		$(call timed,$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.store_widget_state=False $$nb,$$nb); \
	done

test: $(VENV)/installed
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf $(VENV) models results/smoke
