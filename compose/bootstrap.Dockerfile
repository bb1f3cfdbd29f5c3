# The quickstarts' one-shot bootstrap step: the labelzoo core (no model libraries) and the backends'
# example label configs. Build from the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 1000 labelzoo
WORKDIR /app
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY shared ./shared
COPY backends ./backends
RUN pip install -c constraints.txt .
USER 1000
CMD ["labelzoo", "--help"]
