"""The Streamlit app: `streamlit run src/apesim/app/Home.py` (or `make run`)."""
