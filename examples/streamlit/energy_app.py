"""SmartEnergy dashboard: sensor records scored by the isolation-forest job,
on `anomaly` and the SQLite database that `anomaly iforest simulate` and
`anomaly iforest watch` fill.

    anomaly iforest simulate --db sqlite:energy.db --batch-size 5000
    anomaly iforest watch --db sqlite:energy.db --model forest.json --max-iterations 1
    ANOMALY_DB=energy.db streamlit run examples/streamlit/energy_app.py

For each flagged record the job also stores the sensor that pushed it most
toward anomalous and that push's share (`top_feature`, `top_share`); the
table shows them when the scores table has the columns (older databases,
before the job has run, are shown without them).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from anomaly import plot

DB = Path(os.environ.get("ANOMALY_DB", "energy.db").removeprefix("sqlite:"))
MODEL = Path(os.environ.get("ANOMALY_MODEL", DB.with_name("forest.json")))
FEATURES = ["voltage", "current", "power", "temperature"]
EXPLAINED = ["top_feature", "top_share"]  # per flagged record; added to the scores table by newer jobs

st.set_page_config(page_title="SmartEnergy", layout="wide")


@st.cache_data(ttl=30)
def records() -> pd.DataFrame:
    with sqlite3.connect(DB) as conn:
        present = {row[1] for row in conn.execute("PRAGMA table_info(energy_records_scores)")}
        explained = set(EXPLAINED) <= present
        extra = "".join(f", s.{name}" for name in EXPLAINED) if explained else ""
        data = pd.read_sql_query(
            "SELECT r.id, r.datetime, r.voltage, r.current, r.power, r.temperature, s.score, s.decision, "
            f"s.is_anomaly{extra} FROM energy_records r LEFT JOIN energy_records_scores s ON s.record_id = r.id "
            "ORDER BY r.id",
            conn,
        )
    return data.astype({"top_share": float}) if explained else data


@st.cache_data(ttl=30)
def metrics() -> pd.DataFrame:
    with sqlite3.connect(DB) as conn:
        return pd.read_sql_query("SELECT * FROM energy_records_metrics ORDER BY id", conn)


def run_job(*extra: str) -> None:
    cli = os.environ.get("ANOMALY_CLI", "anomaly")
    args = [cli, "iforest", "watch", "--db", f"sqlite:{DB}", "--model", str(MODEL), "--max-iterations", "1",
            "--interval", "10ms", "-q", *extra]  # fmt: skip
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        st.error(f"`{cli}` not found: install the CLI or set ANOMALY_CLI")
        return
    records.clear()
    metrics.clear()
    if proc.returncode == 0:
        st.success("Listo")
    else:
        st.error(proc.stderr[-500:])


st.title("SmartEnergy")
if not DB.exists():
    st.error(f"No database at {DB}: run `anomaly iforest simulate --db sqlite:{DB}` and `anomaly iforest watch`")
    st.stop()

left, right = st.columns(2)
if left.button("Entrenar modelo"):
    MODEL.unlink(missing_ok=True)  # watch trains a fresh one from the newest records
    run_job()
if right.button("Recalcular"):
    run_job()

data = records()
scored = data.dropna(subset=["score"])
anomalies = int(scored["is_anomaly"].sum()) if len(scored) else 0
percent = 100 * anomalies / max(len(scored), 1)
state = metrics()["state"].iloc[-1] if len(metrics()) else "sin datos"
cols = st.columns(4)
cols[0].metric("Registros", f"{len(data):,}")
cols[1].metric("Puntuados", f"{len(scored):,}")
cols[2].metric("Anomalías", anomalies, f"{percent:.2f}%", delta_color="inverse")  # more is worse
cols[3].metric("Estado", state)
bar = "#cb181d" if percent >= 10 else "#e6550d" if percent >= 5 else "#31a354"  # the state's colour
gauge = go.Figure(go.Indicator(
    mode="gauge+number", value=percent, title={"text": "% anómalo"},
    gauge={"axis": {"range": [0, 20]}, "bar": {"color": bar},
           "steps": [{"range": [0, 5], "color": "#c7e9c0"},
                     {"range": [5, 10], "color": "#fdd0a2"},
                     {"range": [10, 20], "color": "#fcbba1"}]},
))  # fmt: skip
st.plotly_chart(gauge)

tab_series, tab_hist, tab_scatter, tab_scores, tab_table = st.tabs(
    ["Series", "Histogramas", "Dispersión", "Predicciones", "Tabla"]
)
with tab_series:
    feature = st.selectbox("Variable", FEATURES)
    st.line_chart(data.set_index("id")[feature])
with tab_hist:
    st.plotly_chart(px.histogram(data, x=st.selectbox("Variable ", FEATURES), nbins=60))
with tab_scatter:
    sample = scored.tail(2000).assign(anomalia=lambda d: d["is_anomaly"].map({0: "normal", 1: "anómalo"}))
    st.plotly_chart(px.scatter_matrix(sample, dimensions=FEATURES, color="anomalia"))
with tab_scores:
    if len(scored):
        st.pyplot(plot.scores(scored["score"], offset=float((scored["score"] - scored["decision"]).iloc[0])))
with tab_table:
    table = scored[scored["is_anomaly"] == 1]
    if "top_feature" in table:  # which sensors most often push the flagged records toward anomalous
        drivers = table["top_feature"].value_counts().rename_axis("sensor").reset_index(name="anomalías")
        drivers["% anomalías"] = drivers["anomalías"] / max(int(drivers["anomalías"].sum()), 1)
        st.subheader("Sensor principal de las anomalías")
        st.dataframe(drivers, hide_index=True, column_config={"% anomalías": st.column_config.NumberColumn(
            format="percent")})  # fmt: skip
        unexplained = int(table["top_feature"].isna().sum())
        if unexplained:
            st.caption(f"Anomalías sin sensor principal (puntuadas antes de que el job lo guardara): {unexplained}")
    st.dataframe(table, hide_index=True, column_config={
        "top_feature": st.column_config.TextColumn("sensor principal"),
        "top_share": st.column_config.NumberColumn("aporte", format="percent"),
    })  # fmt: skip
    st.download_button("Descargar CSV", table.to_csv(index=False), "anomalias.csv", "text/csv")
