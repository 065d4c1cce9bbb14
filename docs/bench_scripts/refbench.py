"""Reference-score benchmark: the scripted expert and the random policy on each maze, normalised by fresh references."""
import json, time
from mage_core.tasks import get_task
from mage_core.evaluate import evaluate, ExpertPolicy, RandomPolicy
from mage_core.data.generate import reference_scores
out={}
for name in ["pointmaze-umaze","pointmaze-medium","pointmaze-large"]:
    t=get_task(name)
    lo,hi=reference_scores(t, 20)
    e=evaluate(t, ExpertPolicy(t), episodes=20, seeds=(1,), ref_scores=(lo,hi))
    r=evaluate(t, RandomPolicy(seed=1), episodes=20, seeds=(1,), ref_scores=(lo,hi))
    out[name]=dict(ref_min=lo, ref_max=hi, expert=e.normalised_mean, expert_se=e.normalised_se, random=r.normalised_mean, random_se=r.normalised_se)
    print(name, out[name], flush=True)
json.dump(out, open('/work/runs/refbench.json','w'), indent=1)
