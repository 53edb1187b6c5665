"""The web app: public call pages per cluster (tenant), on Starlette, Jinja2 and uvicorn."""
