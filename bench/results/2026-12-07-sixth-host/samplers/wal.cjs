const rows=require('fs').readFileSync(process.argv[2],'utf8').trim().split('\n').map(l=>l.split(' ').map(Number));
const acc={U:{o:0,b:0,r:0,f:0},K:{o:0,b:0,r:0,f:0}};
for(let i=1;i<rows.length;i++){const [t,k,o,r,f,b,c]=rows[i],p=rows[i-1];const dor=o-p[2];if(dor<200||c!==p[6])continue;const m=k>p[1]?'K':'U';const a=acc[m];a.o+=dor;a.b+=b-p[5];a.r+=r-p[3];a.f+=f-p[4];}
for(const m of ['U','K']){const a=acc[m];console.log(m,'orders',a.o,'WAL bytes/order',(a.b/a.o).toFixed(0),'records/order',(a.r/a.o).toFixed(2),'FPI/order',(a.f/a.o).toFixed(3))}
