const lines=require('fs').readFileSync(process.argv[2],'utf8').trim().split('\n').map(l=>l.split(' '));
// group rows by sample time
const samples=new Map();for(const [t,k,o,w] of lines){if(!samples.has(t))samples.set(t,{k:+k,o:+o,w:[]});samples.get(t).w.push(w)}
let prev=null;const agg={};
for(const [t,s] of samples){ if(prev){const dk=s.k-prev.k, dor=s.o-prev.o; const mode= dor<=0? null : dk>0?'K':'U'; if(mode){const a=(agg[mode]??={n:0,c:{}});a.n++;for(const w of s.w)a.c[w]=(a.c[w]??0)+1}} prev=s}
for(const m of ['U','K']){const a=agg[m];if(!a)continue;console.log(m,'samples',a.n);for(const [w,c] of Object.entries(a.c).sort((x,y)=>y[1]-x[1]).slice(0,12))console.log('   ',w.padEnd(32),(c/a.n).toFixed(3))}
