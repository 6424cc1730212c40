# make all   : set up .venv, then execute every notebook top to bottom in place (VF_PROFILE=cpu by default)
# make test  : set up .venv, then run the unit tests and the notebooks' smoke executions
PYTHON ?= python3
VENV := .venv
NOTEBOOKS := 1_explore_data.ipynb 2_ft_fib.ipynb 3_ft_usb_then_fib.ipynb

# raw data: ../shared/data when it exists; otherwise the loaders use the Hugging Face hub
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
export VF_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: all notebooks test clean
all: notebooks

$(VENV)/installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

notebooks: $(VENV)/installed
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb (profile $${VF_PROFILE:-cpu})"; \
		start=$$(date +%s); \
		$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=-1 $$nb || exit 1; \
		secs=$$(( $$(date +%s) - start )); \
		echo "   $$nb took $$secs s"; \
		mkdir -p results; [ -f results/notebook_times.csv ] || echo "notebook,profile,seconds,finished" > results/notebook_times.csv; \
		echo "$$nb,$${VF_PROFILE:-cpu},$$secs,$$(date -u +%FT%TZ)" >> results/notebook_times.csv; \
	done

test: $(VENV)/installed
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf $(VENV) models results/smoke
